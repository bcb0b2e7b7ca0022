"""Delivery beyond the governance store: file and HTTP transports, the backoff after a
failure, the off switch, and spooling when the database is down. No event is lost."""

from __future__ import annotations

import json
import logging
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import pytest

from tests.unit import lineage_support as ls
from veilflow.lineage import transports
from veilflow.lineage.emitter import emit_stage
from veilflow.lineage.events import build_stage_event, event_dict
from veilflow.lineage.naming import Naming
from veilflow.lineage.store import spool_dir
from veilflow.lineage.transports import build_deliveries, deliver
from veilflow.lineage.validation import event_errors

OL_ENV = (
    "OPENLINEAGE_URL",
    "OPENLINEAGE_CONFIG",
    "OPENLINEAGE_DISABLED",
    "VEILFLOW_LINEAGE_FILE_DIR",
    "VEILFLOW_LINEAGE",
)


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for k in OL_ENV:
        monkeypatch.delenv(k, raising=False)
    monkeypatch.chdir(tmp_path)  # no openlineage.yml from the checkout
    transports._cache.clear()


def event() -> dict[str, Any]:
    return event_dict(
        build_stage_event(
            ls.policy(),
            ls.RUN_ID,
            ls.manifest(),
            stage="publish",
            event_type="COMPLETE",
            naming=Naming("postgres://localhost:5432", "veilflow"),
        )
    )


def closed_port() -> int:
    """A local port nothing listens on."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def marquez() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """A stand-in lineage server that keeps every event POSTed to /api/v1/lineage."""
    got: list[dict[str, Any]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            if self.path == "/api/v1/lineage":
                got.append(json.loads(body))
                self.send_response(201)
            else:
                self.send_response(404)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}", got
    server.shutdown()
    server.server_close()


def test_nothing_configured_means_the_store_is_the_only_transport() -> None:
    assert build_deliveries() == []


def test_file_transport_writes_one_file_per_event(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    folder = tmp_path / "events"
    monkeypatch.setenv("VEILFLOW_LINEAGE_FILE_DIR", str(folder))
    targets = build_deliveries()
    assert [t.name for t in targets] == ["file"]
    ev = event()
    assert deliver(ev, targets) is None
    assert deliver(ev, targets) is None
    files = sorted(folder.glob("*.json"))
    assert len(files) == 2
    assert json.loads(files[0].read_text()) == ev


def test_http_transport_posts_the_stored_json(
    monkeypatch: pytest.MonkeyPatch, marquez: tuple[str, list[dict[str, Any]]]
) -> None:
    url, got = marquez
    monkeypatch.setenv("OPENLINEAGE_URL", url)
    targets = build_deliveries()
    assert [t.name for t in targets] == ["openlineage:http"]
    ev = event()
    assert deliver(ev, targets) is None
    assert got == [ev]


@pytest.fixture
def broken_server() -> Iterator[tuple[int, list[int]]]:
    """A port whose server accepts each connection and closes it at once, unanswered; the
    list counts the connections made to it."""
    accepted: list[int] = []
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)

    def serve() -> None:
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            accepted.append(1)
            conn.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield int(server.getsockname()[1]), accepted
    server.shutdown(socket.SHUT_RDWR)  # wakes the blocked accept()
    server.close()
    thread.join(timeout=5)


def test_unreachable_marquez_is_reported_then_skipped_for_a_while(
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    broken_server: tuple[int, list[int]],
) -> None:
    port, connections = broken_server
    monkeypatch.setenv("OPENLINEAGE_URL", f"http://user:secret@127.0.0.1:{port}")
    targets = build_deliveries()
    with caplog.at_level(logging.ERROR):
        first = deliver(event(), targets)
    assert first is not None and "openlineage:http" in first and "ConnectionError" in first
    assert "secret" not in first
    assert any(
        "lineage delivery to openlineage:http failed" in r.getMessage() for r in caplog.records
    )
    tried = len(connections)
    assert tried >= 1
    second = deliver(event(), targets)
    assert second is not None and "skipped after a recent failure" in second
    assert len(connections) == tried  # no network attempt within the backoff
    assert deliver(event(), targets, force=True) is not None  # a retry does try again


def test_off_switch_emits_nothing(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("VEILFLOW_LINEAGE", "off")
    monkeypatch.setenv("VEILFLOW_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("VEILFLOW_DATABASE_URL", "postgresql://nobody@/x?host=/nonexistent")
    emit_stage(
        None,
        stage="publish",
        event_type="COMPLETE",
        policy=ls.policy(),
        run_id=ls.RUN_ID,
        manifest=ls.manifest(),
    )
    assert not spool_dir().exists()


def test_database_down_spools_the_event_and_never_raises(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("VEILFLOW_HOME", str(tmp_path / "home"))
    monkeypatch.setenv(
        "VEILFLOW_DATABASE_URL", f"postgresql://nobody@/x?host={tmp_path / 'no-socket-here'}"
    )
    for event_type in ("START", "COMPLETE"):
        emit_stage(
            None,
            stage="transform",
            event_type=event_type,
            policy=ls.policy(),
            run_id=ls.RUN_ID,
            manifest=ls.manifest(),
        )
    files = sorted(spool_dir().glob("*.json"))
    assert len(files) == 2
    record = json.loads(files[1].read_text())
    assert record["run_id"] == ls.RUN_ID and record["stage"] == "transform"
    assert record["event"]["eventType"] == "COMPLETE"
    if (ls.SPEC_DIR / "OpenLineage.json").is_file():
        assert event_errors(record["event"], ls.SPEC_DIR) == []


def test_a_broken_manifest_is_logged_not_raised(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("VEILFLOW_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("VEILFLOW_DATABASE_URL", f"postgresql://nobody@/x?host={tmp_path}")
    with caplog.at_level(logging.ERROR):
        emit_stage(
            None,
            stage="publish",
            event_type="COMPLETE",
            policy=ls.policy(),
            run_id=ls.RUN_ID,
            manifest={"columns": [{"action": "keep"}]},
        )
    assert any("could not emit publish COMPLETE" in r.getMessage() for r in caplog.records)


def test_in_memory_double_is_a_lineage_emitter_with_the_same_events() -> None:
    from veilflow.lineage.emitter import LineageEmitter
    from veilflow.lineage.memory import InMemoryLineage

    double = InMemoryLineage()
    port: LineageEmitter = double
    port(
        None,
        stage="publish",
        event_type="COMPLETE",
        policy=ls.policy(),
        run_id=ls.RUN_ID,
        manifest=ls.manifest(),
    )
    (got,) = double.of("publish", "COMPLETE")
    expected = event()
    got.pop("eventTime"), expected.pop("eventTime")
    assert got == expected


def test_a_broken_transport_config_keeps_the_event_pending(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("VEILFLOW_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("VEILFLOW_DATABASE_URL", f"postgresql://nobody@/x?host={tmp_path}")
    monkeypatch.setenv("OPENLINEAGE_URL", "not a url")
    emit_stage(
        None,
        stage="publish",
        event_type="COMPLETE",
        policy=ls.policy(),
        run_id=ls.RUN_ID,
        manifest=ls.manifest(),
    )
    (path,) = spool_dir().glob("*.json")
    assert json.loads(path.read_text())["delivered"] is False  # a later retry delivers it
