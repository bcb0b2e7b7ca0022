"""The embedded default as a new user gets it: `veilflow db upgrade` makes a login per duty
with a password of its own, the server refuses logins without one (its superuser over the
socket aside), and `veilflow run` publishes as the pipeline's login, which the audit log
names."""

from __future__ import annotations

import stat
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from typer.testing import CliRunner

from tests.conftest import small_data_policy
from veilflow.cli import app
from veilflow.zones.db import connect, duty_url, with_database
from veilflow.zones.logins import LOGINS

runner = CliRunner()


@pytest.fixture
def embedded(
    pg_server: str, veilflow_home: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Path]:
    """The session's embedded server as the default stack: no VEILFLOW_DATABASE_URL, no
    PGPASSWORD to fall back on; ``db upgrade`` applied."""
    monkeypatch.delenv("VEILFLOW_DATABASE_URL", raising=False)
    monkeypatch.delenv("PGPASSWORD", raising=False)
    for login in LOGINS.values():
        monkeypatch.delenv(login.password_env, raising=False)
    out = runner.invoke(app, ["db", "upgrade"])
    assert out.exit_code == 0, out.output
    yield veilflow_home


def whoami(url: str) -> str:
    with psycopg.connect(url, connect_timeout=5) as c:
        row = c.execute("SELECT session_user::text").fetchone()
    assert row is not None
    return str(row[0])


def test_each_duty_connects_as_its_own_login_with_a_password(embedded: Path) -> None:
    for duty, login in LOGINS.items():
        if duty == "airflow":  # Airflow's metadata database: the last test
            continue
        assert whoami(duty_url(duty)) == login.name
        secret = embedded / "secrets" / login.name
        assert stat.S_IMODE(secret.stat().st_mode) == 0o600
        assert stat.S_IMODE(secret.parent.stat().st_mode) == 0o700
    with connect(duty="migrate") as c:
        supers = c.execute(
            "SELECT rolname FROM pg_roles WHERE rolsuper AND rolname LIKE 'veilflow%%'"
        ).fetchall()
    assert supers == []


def test_the_server_refuses_a_login_without_its_password(embedded: Path) -> None:
    url = duty_url("pipeline")
    without = with_database(url, "veilflow", user="veilflow_pipeline_svc")
    with pytest.raises(psycopg.OperationalError, match="password"):
        psycopg.connect(without, connect_timeout=5)
    wrong = with_database(url, "veilflow", user="veilflow_pipeline_svc", password="not-it")
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        psycopg.connect(wrong, connect_timeout=5)
    # The bootstrap superuser still connects over the socket, without a password.
    assert whoami(duty_url("migrate")) == "postgres"


def test_upgrade_again_changes_no_login_and_a_password_from_the_environment_wins(
    embedded: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    again = runner.invoke(app, ["db", "upgrade"])
    assert again.exit_code == 0, again.output
    assert "login " not in again.output
    monkeypatch.setenv("VEILFLOW_UI_PASSWORD", "from-the-environment-1")
    changed = runner.invoke(app, ["db", "upgrade"])
    assert "login veilflow_ui_svc: made or its password set" in changed.output
    url = with_database(
        duty_url("migrate"), "veilflow", user="veilflow_ui_svc", password="from-the-environment-1"
    )
    assert whoami(url) == "veilflow_ui_svc"
    monkeypatch.delenv("VEILFLOW_UI_PASSWORD")
    back = runner.invoke(app, ["db", "upgrade"])
    assert "login veilflow_ui_svc: made or its password set" in back.output
    assert whoami(duty_url("ui")) == "veilflow_ui_svc"


def test_the_ui_login_reads_nothing_until_it_takes_a_role(embedded: Path) -> None:
    with connect(duty="ui") as c:
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            c.execute("SELECT count(*) FROM governance.runs")
        c.rollback()
        c.execute("SET ROLE veilflow_viewer")
        c.execute("SELECT count(*) FROM governance.runs")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            c.execute("SELECT count(*) FROM governance.audit_log")
        c.rollback()
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            c.execute("SET ROLE veilflow_pipeline")


def test_a_run_publishes_as_the_pipeline_login_and_the_audit_log_names_it(
    embedded: Path, tmp_path: Path, demo_policy_path: Path
) -> None:
    seeded = runner.invoke(app, ["seed", "--rows", "2000", "--seed", "11"])
    assert seeded.exit_code == 0, seeded.output
    policy = tmp_path / "customers.yaml"
    policy.write_text(small_data_policy(demo_policy_path.read_text()))
    with connect(duty="migrate") as c:
        row = c.execute("SELECT coalesce(max(seq), 0) FROM governance.audit_log").fetchone()
    assert row is not None
    ran = runner.invoke(app, ["run", str(policy), "--run-id", "logins-run", "--workers", "1"])
    assert ran.exit_code == 0, ran.output
    assert "published" in ran.output
    with connect(duty="migrate") as c:
        actors = {
            r[0]
            for r in c.execute(
                "SELECT DISTINCT actor FROM governance.audit_log WHERE seq > %s", (row[0],)
            ).fetchall()
        }
        owner = c.execute(
            "SELECT tableowner FROM pg_tables"
            " WHERE schemaname = 'anonymized' AND tablename = 'customers'"
        ).fetchone()
    assert actors == {"veilflow_pipeline_svc"}
    assert owner == ("veilflow_pipeline_svc",)


def test_airflow_keeps_its_metadata_as_a_login_that_owns_that_database_only(
    embedded: Path,
) -> None:
    from veilflow.zones import db

    superuser = with_database(duty_url("migrate"), "airflow")
    db.airflow_url()  # makes the database
    with psycopg.connect(superuser, autocommit=True) as c:
        c.execute("CREATE TABLE IF NOT EXISTS left_by_superuser (id int)")
    db._ENSURED.clear()  # a new process
    url = db.airflow_url().replace("postgresql+psycopg2://", "postgresql://")
    assert whoami(url) == "veilflow_airflow_svc"
    with psycopg.connect(url, autocommit=True) as c:
        c.execute("DROP TABLE left_by_superuser")  # it owns what the superuser left
        row = c.execute("SELECT rolsuper, rolcreaterole FROM pg_roles WHERE rolname = current_user")
        assert row.fetchone() == (False, False)
    with (
        psycopg.connect(url.replace("/airflow?", "/veilflow?")) as zones,
        pytest.raises(psycopg.errors.InsufficientPrivilege, match="schema governance"),
    ):
        zones.execute("SELECT 1 FROM governance.runs")
