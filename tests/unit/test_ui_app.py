"""The governance UI through FastAPI's TestClient: a stubbed Airflow auth (tokens ``alice``
Airflow admin, ``victor`` viewer, ``audrey`` viewer mapped to auditor, ``carol`` mapped to
admin and auditor, ``mel`` mapped to ml_engineer, ``oscar`` with an Airflow role veilflow does
not know, ``nemo`` without view rights) and a real database with lineage events stored by the
lineage emitter, run manifests, keys and the audit log. The app connects as its own service
login, a member of veilflow_viewer, veilflow_auditor and veilflow_admin only WITH INHERIT
FALSE, SET TRUE, as the deployed UI's login is: it reads nothing unless a page sets a role.

Ground truth comes from the database (role membership, key versions, audit rows) and from the
hand-made manifest, never from the page under test."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

import psycopg
import pytest
from fastapi.testclient import TestClient

from tests.unit import lineage_support as ls
from veilflow.lineage.emitter import emit_stage
from veilflow.ui.app import create_app
from veilflow.ui.auth import Identity, form_token
from veilflow.ui.roles import RoleMap, UiConfigError, acting_as
from veilflow.zones.db import with_database

ORIGIN = "http://testserver"
RUN_A = "patients:manual__2026-11-20T06:00:00+00:00"
RUN_B = "patients:scheduled__2026-11-27T06:00:00+00:00"
USERS = {
    "alice": Identity("alice", is_admin=True, role="ADMIN"),
    "victor": Identity("victor", is_admin=False, role="VIEWER"),
    "audrey": Identity("audrey", is_admin=False, role="VIEWER"),
    "carol": Identity("carol", is_admin=False, role="OP"),
    "mel": Identity("mel", is_admin=False, role="USER"),
    "oscar": Identity("oscar", is_admin=False, role="Public"),
    "nemo": Identity("nemo", is_admin=False, may_view=False, role=None),
}
UI_ROLES = "audrey:auditor, carol:admin+auditor, mel:ml_engineer"
UI_LOGIN = f"vf_ui_svc_{os.getpid()}"
UI_GROUPS = ("veilflow_viewer", "veilflow_auditor", "veilflow_admin")


async def resolve(token: str) -> Identity | None:
    return USERS.get(token)


def run_link(dataset: str, run_id: str) -> str | None:
    return f"/dags/veilflow_{dataset}/runs/{run_id.split(':', 1)[1]}"


def store_run(
    conn: psycopg.Connection, run_id: str, manifest: dict[str, Any], *, status: str, at: datetime
) -> None:
    """A run as the stages leave it: its row in governance.runs and its lineage events."""
    manifest = {**manifest, "run_id": run_id}
    conn.execute(
        "INSERT INTO governance.runs (run_id, dataset, policy_hash, status, started_at,"
        " finished_at, rows_in, rows_out, manifest) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)",
        (
            run_id,
            "patients",
            manifest["policy"]["hash"],
            status,
            at,
            at + timedelta(minutes=2),
            manifest["rows_in"],
            manifest.get("rows_out"),
            json.dumps(manifest),
        ),
    )
    pol = ls.policy()
    stages = [("extract", "COMPLETE"), ("transform", "COMPLETE")]
    stages += (
        [("validate", "COMPLETE"), ("publish", "COMPLETE")]
        if status == "published"
        else [("validate", "FAIL"), ("quarantine", "COMPLETE")]
    )
    for stage, etype in stages:
        emit_stage(
            conn, stage=stage, event_type=etype, policy=pol, run_id=run_id, manifest=manifest
        )
    # the store keeps the emission time; pin it so date filters have a known answer
    conn.execute(
        "UPDATE governance.lineage_events SET event_time = %s WHERE run_id = %s", (at, run_id)
    )


def ui_connect() -> psycopg.Connection:
    """The app's connection: the UI's service login, to this test's zones database."""
    url = os.environ["VEILFLOW_DATABASE_URL"]
    database = url.rsplit("/", 1)[-1].split("?", 1)[0]
    return psycopg.connect(with_database(url, database, user=UI_LOGIN), autocommit=True)


@pytest.fixture
def ui_login(conn: psycopg.Connection) -> Iterator[str]:
    """A login like the deployed UI's: it may SET the UI's group roles and holds none."""
    from tests.conftest import make_login

    make_login(conn, UI_LOGIN)
    for group in UI_GROUPS:
        conn.execute(f'GRANT {group} TO "{UI_LOGIN}" WITH INHERIT FALSE, SET TRUE')
    yield UI_LOGIN
    conn.execute(f'DROP ROLE IF EXISTS "{UI_LOGIN}"')


@pytest.fixture
def ui_db(zones_db: str, ui_login: str, tmp_path: Path) -> Iterator[str]:
    docs = tmp_path / "datadocs"
    (docs / "validations").mkdir(parents=True)
    (docs / "index.html").write_text("<html><body>GX data docs index</body></html>")
    (tmp_path / "secret.txt").write_text("outside the docs")
    published = ls.manifest(passed=True)
    published["gate"]["data_docs"] = str(docs / "index.html")
    with psycopg.connect(zones_db, autocommit=True) as conn:
        store_run(
            conn,
            RUN_A,
            ls.manifest(passed=False),
            status="quarantined",
            at=datetime(2026, 11, 20, 6, tzinfo=UTC),
        )
        store_run(
            conn, RUN_B, published, status="published", at=datetime(2026, 11, 27, 6, tzinfo=UTC)
        )
    yield zones_db


def client(token: str | None = None, *, bearer: bool = False) -> TestClient:
    app = create_app(resolve, connect=ui_connect, run_link=run_link, roles=RoleMap.parse(UI_ROLES))
    c = TestClient(app, base_url=ORIGIN)
    if token and bearer:
        c.headers["Authorization"] = f"Bearer {token}"
    elif token:
        c.cookies.set("_token", token)
    return c


def post(
    c: TestClient,
    path: str,
    data: dict[str, str],
    *,
    token: str | None,
    origin: str | None = ORIGIN,
) -> Any:
    form = dict(data)
    if token is not None:
        form["form_token"] = form_token(token)
    headers = {"Origin": origin} if origin else {}
    return c.post(path, data=form, headers=headers)


def svg_texts(html: str) -> list[str]:
    svg = re.search(r"<svg.*?</svg>", html, re.S)
    assert svg, "no <svg> on the page"
    return re.findall(r"<text[^>]*>([^<]*)</text>", svg.group(0))


# ------------------------------------------------------------------------------- auth
READ_PAGES = [
    "/lineage",
    "/lineage/patients",
    "/runs",
    f"/runs/view?run_id={quote(RUN_B)}",
]
PAGES = [*READ_PAGES, "/access", "/keys", "/audit"]


@pytest.mark.parametrize("path", PAGES)
def test_every_page_refuses_without_a_valid_login(ui_db: str, path: str) -> None:
    assert client().get(path).status_code == 401
    assert client("forged").get(path).status_code == 401
    assert client("nemo").get(path).status_code == 403
    ok = client("carol").get(path)  # admin and auditor: every page
    assert ok.status_code == 200, ok.text[-500:]
    assert "carol" in ok.text


def nav(html: str) -> list[str]:
    bar = re.search(r"<nav>(.*?)</nav>", html, re.S)
    assert bar, "no navigation"
    return re.findall(r">([A-Z][a-z]+)</a>", bar.group(1))


def refusal(c: TestClient, path: str) -> str:
    r = c.get(path)
    assert r.status_code == 403, (path, r.status_code, r.text[-500:])
    problem = re.search(r'<p class="error-message">([^<]*)</p>', r.text)
    assert problem, r.text[-500:]
    return problem.group(1)


def test_an_airflow_viewer_sees_lineage_and_runs_only(ui_db: str) -> None:
    c = client("victor")
    for path in READ_PAGES:
        assert c.get(path).status_code == 200, path
    assert (
        refusal(c, "/access")
        == "The Access page needs the veilflow role admin or auditor; Airflow user victor has"
        " viewer."
    )
    assert refusal(c, "/keys").startswith("The Keys page needs the veilflow role admin;")
    assert refusal(c, "/audit").startswith("The Audit page needs the veilflow role auditor;")
    assert refusal(c, "/audit?verify_chain=1").startswith("The Audit page needs")
    page = c.get("/runs").text
    assert nav(page) == ["Lineage", "Runs"]
    assert 'class="roles">viewer<' in page
    # the error page's navigation too: no link to what the person cannot open
    assert nav(c.get("/keys").text) == ["Lineage", "Runs"]


def test_an_auditor_reads_audit_and_access_but_not_keys(ui_db: str) -> None:
    c = client("audrey")  # Airflow viewer, auditor by VEILFLOW_UI_ROLES
    audit = c.get("/audit", params={"verify_chain": "1"})
    assert audit.status_code == 200 and "Audit chain intact" in audit.text
    access = c.get("/access")
    assert access.status_code == 200 and "grant-form" not in access.text
    assert c.get("/lineage/patients").status_code == 200
    assert refusal(c, "/keys") == (
        "The Keys page needs the veilflow role admin; Airflow user audrey has auditor."
    )
    assert nav(audit.text) == ["Lineage", "Runs", "Access", "Audit"]


def test_an_admin_manages_but_reads_the_audit_log_only_if_also_auditor(ui_db: str) -> None:
    alice = client("alice")  # Airflow admin: veilflow admin, not auditor
    assert "grant-form" in alice.get("/access").text
    assert alice.get("/keys").status_code == 200
    assert refusal(alice, "/audit") == (
        "The Audit page needs the veilflow role auditor; Airflow user alice has admin."
    )
    assert refusal(alice, "/audit?verify_chain=1").startswith("The Audit page needs")
    assert nav(alice.get("/keys").text) == ["Lineage", "Runs", "Access", "Keys"]
    assert "audit?action=access" not in alice.get("/access").text  # no link to a 403
    carol = client("carol")  # mapped admin + auditor
    assert carol.get("/audit", params={"verify_chain": "1"}).status_code == 200
    assert nav(carol.get("/audit").text) == ["Lineage", "Runs", "Access", "Keys", "Audit"]


@pytest.mark.parametrize("user", ["oscar", "mel"])
def test_no_page_for_an_unknown_airflow_role_or_a_role_without_pages(ui_db: str, user: str) -> None:
    c = client(user)
    for path in PAGES:
        assert c.get(path).status_code == 403, path
    has = "no veilflow role" if user == "oscar" else "ml_engineer"
    assert refusal(c, "/lineage") == (
        "The Lineage page needs the veilflow role admin, auditor, steward or viewer;"
        f" Airflow user {user} has {has}."
    )
    assert nav(c.get("/runs").text) == []


def test_bearer_header_wins_over_the_cookie(ui_db: str) -> None:
    c = client("victor", bearer=True)
    c.cookies.set("_token", "alice")
    assert c.get("/access").status_code == 403
    assert "Airflow user <b>victor</b>" in c.get("/runs").text


# ------------------------------------------------------------------------------- roles
def test_ui_roles_come_from_the_airflow_role_unless_configured() -> None:
    roles = RoleMap.parse(" alice : auditor , carol:admin+auditor")
    assert roles.roles_for("alice", "ADMIN", is_admin=True) == {"auditor"}  # replaced
    assert roles.roles_for("carol", "VIEWER", is_admin=False) == {"admin", "auditor"}
    assert roles.roles_for("dave", "ADMIN", is_admin=True) == {"admin"}
    for airflow_role in ("VIEWER", "USER", "OP", "Viewer, Public", "op"):
        assert roles.roles_for("dave", airflow_role, is_admin=False) == {"viewer"}
    for airflow_role in ("Public", "", None, "ADMIN"):  # ADMIN without the manager's say
        assert roles.roles_for("dave", airflow_role, is_admin=False) == frozenset()
    assert RoleMap.parse("   ").overrides == {}


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("alice", "entry 1 ('alice'): write user:role"),
        (":auditor", "entry 1 (':auditor'): write user:role"),
        ("alice:b:c", "write user:role"),
        ("alice:", "an empty role name"),
        ("alice:admin+", "an empty role name"),
        ("bob:steward,,", "entry 2 (''): write user:role"),
        ("alice:root", "unknown veilflow role 'root'; one of"),
        ("alice:pipeline", "unknown veilflow role 'pipeline'"),
        ("alice:Auditor", "unknown veilflow role 'Auditor'"),
        ("a:auditor,a:admin", "entry 2 ('a:admin'): a is named twice"),
    ],
)
def test_a_malformed_role_setting_is_refused_with_the_reason(value: str, problem: str) -> None:
    with pytest.raises(UiConfigError, match=re.escape(problem)) as err:
        RoleMap.parse(value)
    assert str(err.value).startswith("VEILFLOW_UI_ROLES entry ")


def test_a_malformed_role_setting_closes_every_page(
    ui_db: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VEILFLOW_UI_ROLES", "audrey:auditor,bob:root")
    app = create_app(resolve, connect=ui_connect)
    for token in ("victor", "alice", "audrey"):
        c = TestClient(app, base_url=ORIGIN)
        c.cookies.set("_token", token)
        for path in ("/lineage", "/audit"):
            r = c.get(path)
            assert r.status_code == 500, (token, path)
            assert "unknown veilflow role &#39;root&#39;" in r.text
    assert TestClient(app, base_url=ORIGIN).get("/lineage").status_code == 401  # says nothing


# ------------------------------------------------------------------------------- database role
def test_the_ui_login_alone_reads_nothing(ui_db: str) -> None:
    with ui_connect() as c, pytest.raises(psycopg.errors.InsufficientPrivilege):
        c.execute("SELECT count(*) FROM governance.runs")


def test_work_runs_as_the_chosen_group_role_read_only(ui_db: str) -> None:
    with acting_as(ui_connect, "veilflow_viewer") as c:
        row = c.execute(
            "SELECT session_user::text, current_user::text,"
            " current_setting('transaction_read_only')"
        ).fetchone()
        assert row == (UI_LOGIN, "veilflow_viewer", "on")
        assert c.execute("SELECT count(*) FROM governance.runs").fetchone() == (2,)
        # what a viewer may not read stays unreadable, whatever a page's code asks
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            c.execute("SELECT count(*) FROM governance.audit_log")
    with acting_as(ui_connect, "veilflow_admin") as c:
        c.execute("SELECT count(*) FROM governance.data_keys")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):  # admins do not read it
            c.execute("SELECT count(*) FROM governance.audit_log")
    with acting_as(ui_connect, "veilflow_auditor") as c:
        c.execute("SELECT count(*) FROM governance.audit_log")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            c.execute("SELECT count(*) FROM governance.data_keys")
    # a page is read-only even as a role that may write; an action is not
    with (
        acting_as(ui_connect, "veilflow_admin") as c,
        pytest.raises(psycopg.errors.ReadOnlySqlTransaction),
    ):
        c.execute("UPDATE governance.data_keys SET state = state")
    with acting_as(ui_connect, "veilflow_admin", read_only=False) as c:
        c.execute("UPDATE governance.data_keys SET state = state")


def test_a_group_role_the_login_may_not_take_is_a_clear_error(ui_db: str) -> None:
    with (
        pytest.raises(UiConfigError, match=f"login {UI_LOGIN} cannot act as veilflow_steward"),
        acting_as(ui_connect, "veilflow_steward"),
    ):
        pass


def test_a_page_cannot_read_more_than_its_role_even_for_an_auditor(
    ui_db: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A Runs page with a bug that reads the audit log fails, even when the person asking
    (carol) may read the audit log: the page runs as veilflow_viewer."""
    from veilflow.ui import queries

    def leaky(conn: psycopg.Connection, **_: Any) -> list[queries.RunRow]:
        conn.execute("SELECT * FROM governance.audit_log").fetchall()
        return []

    monkeypatch.setattr(queries, "runs", leaky)
    with pytest.raises(psycopg.errors.InsufficientPrivilege, match="audit_log"):
        client("carol").get("/runs")


# ------------------------------------------------------------------------------- lineage
def test_lineage_explorer_draws_every_output_column(ui_db: str) -> None:
    html = client("victor").get("/lineage/patients").text
    manifest = ls.manifest()
    outputs = [c["name"] for c in manifest["columns"] if c["action"] != "drop"]
    texts = svg_texts(html)
    for name in outputs:
        assert name in texts, f"{name} missing from the graph"
    assert "fax" not in texts  # dropped: no output, no node
    keyed = {c["key"] for c in manifest["columns"] if c.get("key")}
    assert keyed and all(any(k in t for t in texts) for k in keyed)
    assert "restricted.patients" in texts and "anonymized.patients" in texts
    # newest run chosen by default, with its Airflow link (opened in the top window)
    assert f'Column lineage of run <span class="mono">{RUN_B}</span>' in html
    assert (
        'href="/dags/veilflow_patients/runs/scheduled__2026-11-27T06:00:00+00:00" '
        'target="_top"' in html
    )


def test_lineage_filters_by_date_policy_and_run(ui_db: str) -> None:
    c = client("victor")
    only_old = c.get("/lineage/patients", params={"until": "2026-11-21"}).text
    assert RUN_A in only_old and RUN_B not in only_old
    only_new = c.get("/lineage/patients", params={"since": "2026-11-26"}).text
    assert RUN_B in only_new and RUN_A not in only_new
    policy_hash = ls.policy().hash
    assert "Runs (2)" in c.get("/lineage/patients", params={"policy": policy_hash[:10]}).text
    assert "Runs (0)" in c.get("/lineage/patients", params={"policy": "f" * 10}).text
    picked = c.get("/lineage/patients", params={"run": RUN_A}).text
    assert f'Column lineage of run <span class="mono">{RUN_A}</span>' in picked
    one = svg_texts(c.get("/lineage/patients", params={"column": "email"}).text)
    assert "email" in one and "phone" not in one
    assert c.get("/lineage/patients", params={"since": "yesterday"}).status_code == 400


def test_lineage_index_lists_datasets_and_jumps_to_one(ui_db: str) -> None:
    c = client("victor")
    index = c.get("/lineage").text
    assert ">patients</a>" in index and "anonymized.patients" in index
    jump = c.get("/lineage", params={"dataset": "patients"}, follow_redirects=False)
    assert jump.status_code == 303 and jump.headers["location"].endswith("/lineage/patients")
    assert "No lineage stored" in c.get("/lineage", params={"since": "2030-01-01"}).text


# ------------------------------------------------------------------------------- runs
def test_run_page_shows_the_manifest(ui_db: str) -> None:
    c = client("victor")
    html = c.get("/runs/view", params={"run_id": RUN_B}).text
    m = ls.manifest(passed=True)
    assert re.search(r'class="rows-in">\s*1000<', html)
    assert re.search(r'class="rows-out">\s*996<', html)
    for col in m["columns"]:
        assert f'<td class="mono">{col["name"]}</td><td><b>{col["action"]}</b>' in html
    for check in m["gate"]["checks"]:
        assert f"<td>{check['name']}</td>" in html
    assert "FAIL" not in html
    docs = re.search(r'href="([^"]+)"[^>]*>GX Data Docs', html)
    assert docs, "no Data Docs link"
    got = c.get(docs.group(1))
    assert got.status_code == 200 and "GX data docs index" in got.text
    escape = docs.group(1).rsplit("/", 1)[0] + "/..%2Fsecret.txt"
    assert c.get(escape).status_code == 404
    assert "outside the docs" not in c.get(escape).text


def test_quarantined_run_shows_failed_checks_and_reasons(ui_db: str) -> None:
    html = client("victor").get("/runs/view", params={"run_id": RUN_A}).text
    assert '<span class="pill quarantined">quarantined</span>' in html
    assert re.search(
        r"<td>no_raw_value_survives</td><td class=\"mono\">email</td>\s*"
        r"<td class=\"bad\">FAIL</td>",
        html,
    )
    assert "quarantine.patients__x" in html
    listing = client("victor").get("/runs", params={"status": "quarantined"}).text
    assert RUN_A in listing and RUN_B not in listing
    assert client("victor").get("/runs/view", params={"run_id": "nope"}).status_code == 404


# ------------------------------------------------------------------------------- access
def member(conn: psycopg.Connection, login: str, group: str) -> bool:
    row = conn.execute("SELECT pg_has_role(%s, %s, 'USAGE')", (login, group)).fetchone()
    return bool(row and row[0])


def ui_audit(conn: psycopg.Connection, action: str) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (r[0], r[1], r[2])
        for r in conn.execute(
            "SELECT target, outcome, details FROM governance.audit_log WHERE action = %s"
            " ORDER BY seq",
            (action,),
        ).fetchall()
    ]


def test_admin_grants_and_revokes_a_role_audited_with_the_airflow_user(ui_db: str) -> None:
    from tests.conftest import make_login

    with psycopg.connect(ui_db, autocommit=True) as conn:
        make_login(conn, "vf_ui_analyst")
        try:
            c = client("alice")
            assert "grant-form" in c.get("/access").text
            r = post(
                c, "/access/grant", {"login": "vf_ui_analyst", "role": "ml_engineer"}, token="alice"
            )
            assert r.status_code == 200, r.text[-800:]
            assert "Granted veilflow_ml_engineer to vf_ui_analyst" in r.text
            assert member(conn, "vf_ui_analyst", "veilflow_ml_engineer")
            # the page now shows the login reading the anonymized zone, not the restricted one
            row = re.search(r'<tr data-login="vf_ui_analyst">(.*?)</tr>', r.text, re.S)
            assert row and re.findall(r"<td>([^<]*)</td>", row.group(1))[:2] == ["—", "read"]
            assert ui_audit(conn, "ui.access.grant") == [
                (
                    "vf_ui_analyst ml_engineer",
                    "ok",
                    {
                        "airflow_user": "alice",
                        "via": "ui",
                        "role": "veilflow_ml_engineer",
                        "login_created": False,
                    },
                )
            ]
            assert ui_audit(conn, "access.grant")[-1][:2] == ("vf_ui_analyst", "ok")
            r = post(
                c,
                "/access/revoke",
                {"login": "vf_ui_analyst", "role": "ml_engineer"},
                token="alice",
            )
            assert "Revoked veilflow_ml_engineer from vf_ui_analyst" in r.text
            assert not member(conn, "vf_ui_analyst", "veilflow_ml_engineer")
            revoked = ui_audit(conn, "ui.access.revoke")[-1][2]
            assert revoked["airflow_user"] == "alice" and revoked["was_member"] is True
            audit_page = client("audrey").get("/audit", params={"airflow_user": "alice"}).text
            assert "ui.access.grant" in audit_page and "ui.access.revoke" in audit_page
        finally:
            conn.execute('DROP ROLE IF EXISTS "vf_ui_analyst"')


def test_non_admins_and_forged_posts_change_nothing(ui_db: str) -> None:
    from tests.conftest import make_login

    with psycopg.connect(ui_db, autocommit=True) as conn:
        make_login(conn, "vf_ui_target")
        try:
            grant = {"login": "vf_ui_target", "role": "steward"}
            viewer = client("victor")
            assert viewer.get("/access").status_code == 403
            assert "grant-form" not in client("audrey").get("/access").text
            for who in ("victor", "audrey"):  # neither an admin
                refused = post(client(who), "/access/grant", grant, token=who)
                assert refused.status_code == 403
                assert "Granting or revoking roles needs the veilflow role admin" in refused.text
                denied = ui_audit(conn, "ui.access.grant")
                assert denied and denied[-1][1] == "denied"
                assert denied[-1][2]["airflow_user"] == who
            admin = client("alice")
            assert (
                post(
                    admin, "/access/grant", grant, token="alice", origin="http://evil.example"
                ).status_code
                == 403
            )
            assert post(admin, "/access/grant", grant, token=None).status_code == 403
            assert post(admin, "/access/grant", grant, token="victor").status_code == 403
            assert post(client(), "/access/grant", grant, token=None).status_code == 401
            assert not member(conn, "vf_ui_target", "veilflow_steward")
            # a bearer header is not ambient: no same-origin form needed
            api = client("alice", bearer=True)
            r = post(api, "/access/grant", grant, token=None, origin=None)
            assert r.status_code == 200 and member(conn, "vf_ui_target", "veilflow_steward")
        finally:
            conn.execute('DROP ROLE IF EXISTS "vf_ui_target"')


def test_unknown_role_or_login_is_an_error_not_a_change(ui_db: str) -> None:
    c = client("alice")
    assert (
        post(c, "/access/grant", {"login": "x", "role": "root"}, token="alice").status_code == 400
    )
    r = post(c, "/access/grant", {"login": "vf_nobody_here", "role": "steward"}, token="alice")
    assert r.status_code == 400 and "no login vf_nobody_here" in r.text
    with psycopg.connect(ui_db) as conn:
        assert ui_audit(conn, "ui.access.grant")[-1][1] == "error"


# ------------------------------------------------------------------------------- keys
def test_keys_page_lists_versions_never_material_and_admins_rotate(ui_db: str) -> None:
    from veilflow.vault.keys import ensure_key
    from veilflow.vault.master import default_master_key

    with psycopg.connect(ui_db, autocommit=True) as conn:
        ensure_key(conn, default_master_key(create=False), "patients", "token")
        got = conn.execute("SELECT wrapped FROM governance.data_keys").fetchone()
        assert got is not None
        wrapped = bytes(got[0])
        viewer = client("victor")
        html = client("alice").get("/keys").text
        assert "patients/token" in html and "v1" in html and "Rotate" in html
        for form in (wrapped.hex(), wrapped.hex()[:16], repr(wrapped)[2:30]):
            assert form not in html
        assert viewer.get("/keys").status_code == 403
        assert (
            post(viewer, "/keys/rotate", {"key": "patients/token"}, token="victor").status_code
            == 403
        )
        states = conn.execute(
            "SELECT version, state FROM governance.data_keys ORDER BY version"
        ).fetchall()
        assert states == [(1, "active")]
        admin = client("alice")
        r = post(admin, "/keys/rotate", {"key": "patients/token"}, token="alice")
        assert r.status_code == 200 and "patients/token@v2 is active" in r.text
        states = conn.execute(
            "SELECT version, state FROM governance.data_keys ORDER BY version"
        ).fetchall()
        assert states == [(1, "retired"), (2, "active")]
        rows = ui_audit(conn, "ui.key.rotate")
        assert [(t, o, d.get("airflow_user")) for t, o, d in rows] == [
            ("patients/token", "denied", "victor"),
            ("patients/token", "ok", "alice"),
        ]
        bad = post(admin, "/keys/rotate", {"key": "patients/token@v1"}, token="alice")
        assert bad.status_code == 400


# ------------------------------------------------------------------------------- audit
def test_audit_filters_and_chain_verification(ui_db: str) -> None:
    from veilflow.vault.audit import record
    from veilflow.vault.audit import verify as audit_verify

    with psycopg.connect(ui_db, autocommit=True) as conn:
        record(
            conn, "reidentify.values", target="patients.email", purpose="ticket 42 fraud", count=3
        )
        record(conn, "key.use", target="patients/token", outcome="denied")
        c = client("audrey")
        only = c.get("/audit", params={"action": "reidentify"}).text
        assert "reidentify.values" in only and "key.use" not in only
        denied = c.get("/audit", params={"outcome": "denied"}).text
        assert "key.use" in denied and "reidentify.values" not in denied
        (total,) = conn.execute("SELECT count(*) FROM governance.audit_log").fetchone() or (0,)
        ok = c.get("/audit", params={"verify_chain": "1"}).text
        assert f"Audit chain intact: {total} row(s) verified" in ok
        head = audit_verify(conn).head
        assert f'<span class="mono anchor">{total}:{head}</span>' in ok  # the anchor, whole
        conn.execute("ALTER TABLE governance.audit_log DISABLE TRIGGER audit_log_append_only")
        conn.execute(
            "UPDATE governance.audit_log SET count = 300 WHERE action = 'reidentify.values'"
        )
        conn.execute("ALTER TABLE governance.audit_log ENABLE TRIGGER audit_log_append_only")
        (seq,) = conn.execute(
            "SELECT seq FROM governance.audit_log WHERE action = 'reidentify.values'"
        ).fetchone() or (None,)
        broken = c.get("/audit", params={"verify_chain": "1"}).text
        assert f"Audit chain BROKEN at row {seq}" in broken


def test_names_from_the_url_and_the_store_are_escaped(ui_db: str) -> None:
    hostile = "<img src=x onerror=alert(1)>"
    html = client("victor").get(f"/lineage/{quote(hostile, safe='')}").text
    assert hostile not in html and "&lt;img src=x onerror=alert(1)&gt;" in html
    with psycopg.connect(ui_db, autocommit=True) as conn:
        from veilflow.vault.audit import record

        record(conn, "key.use", target=hostile, details={"note": hostile})
    audit = client("audrey").get("/audit").text
    assert hostile not in audit and "&lt;img src=x" in audit


# ------------------------------------------------------------------------------- risk
def test_risk_page_plots_the_history_and_marks_a_refused_run(ui_db: str) -> None:
    with psycopg.connect(ui_db, autocommit=True) as conn:
        for run_id, at, prosecutor, passed in (
            (RUN_A, datetime(2026, 11, 20, 6, tzinfo=UTC), 0.02, True),
            (RUN_B, datetime(2026, 11, 27, 6, tzinfo=UTC), 0.09, False),
        ):
            conn.execute(
                "INSERT INTO governance.risk_history (run_id, dataset, measured_at, rows, k, l,"
                " t, prosecutor_risk, source_risk, linkage_risk, passed, details) VALUES"
                " (%s, 'patients', %s, 1000, 5, 2, 0.1, %s, %s, 0.001, %s, %s)",
                (
                    run_id,
                    at,
                    prosecutor,
                    prosecutor + 0.01,
                    passed,
                    json.dumps({"risk_k": 10, "thresholds": {"prosecutor_risk": 0.05}}),
                ),
            )
    html = client("victor").get("/risk/patients").text
    assert html.count("<circle ") == 2
    assert 'class="run refused"' in html and 'class="run passed"' in html
    assert "max prosecutor" in svg_texts(html)
    assert re.findall(r'class="prosecutor">([^<]+)<', html) == ["9.00%", "2.00%"]
    assert "risk history" in client("victor").get("/runs/view", params={"run_id": RUN_B}).text
    assert "No risk recorded" in client("victor").get("/risk/nosuch").text
    assert client("oscar").get("/risk/patients").status_code == 403


def test_run_page_shows_utility_synthetic_table_dp_releases_and_budget(ui_db: str) -> None:
    with psycopg.connect(ui_db, autocommit=True) as conn:
        conn.execute(
            "UPDATE governance.runs SET manifest = manifest || %s::jsonb WHERE run_id = %s",
            (
                json.dumps(
                    {
                        "utility": {
                            "target": "sex",
                            "model": "logistic_regression",
                            "features": ["age"],
                            "records": {"train": 700, "test": 300},
                            "variants": {
                                "source": {"accuracy": 0.91, "auc": 0.97},
                                "masked": {"accuracy": 0.72, "auc": 0.75},
                            },
                            "cost": {"accuracy": 0.19, "auc": 0.22},
                        },
                        "synthetic": {
                            "table": "anonymized.patients_synthetic",
                            "synthesizer": "gaussian_copula",
                            "rows": 996,
                            "trained_on": 996,
                            "exact_copies": 0,
                            "distance": {
                                "min_distance": 0.001,
                                "too_close_share": 0.002,
                                "max_close_share": 0.01,
                            },
                            "fidelity": {
                                "quality": 0.97,
                                "max_correlation_difference": 0.04,
                                "columns": {"age": {"kind": "numeric", "ks": 0.02}},
                            },
                        },
                        "releases": {
                            "epsilon_spent": 0.8,
                            "delta_spent": 0.0,
                            "budget": {"epsilon_total": 5.0, "epsilon_remaining": 4.2},
                            "releases": [
                                {
                                    "name": "h",
                                    "table": "anonymized.patients_h",
                                    "statistic": "histogram",
                                    "column": "age",
                                    "group_by": ["sex"],
                                    "cells": 6,
                                    "epsilon": 0.8,
                                    "delta": 0.0,
                                    "mechanism": "geometric",
                                    "scale": 1.25,
                                }
                            ],
                        },
                    }
                ),
                RUN_B,
            ),
        )
    html = client("victor").get("/runs/view", params={"run_id": RUN_B}).text
    assert "ε 0.8 spent" in html and "4.2 remaining" in html
    assert '<td class="mono">anonymized.patients_h</td>' in html
    assert '<td class="epsilon">0.8</td>' in html
    assert re.search(r'<tr class="cost"><th>[^<]+</th><td>0.19</td><td>0.22</td>', html)
    assert '<td class="mono">anonymized.patients_synthetic</td>' in html
    assert "quality 0.97" in html
