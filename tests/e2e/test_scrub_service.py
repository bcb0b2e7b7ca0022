"""`veilflow serve` started as a user starts it: two worker processes behind one port, a token
from `veilflow api token issue`, requests over HTTP, and on Ctrl-C the counts in the audit
log under the pipeline's login."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import psycopg
import pytest

from tests.conftest import make_login
from veilflow.zones.db import with_database

pytestmark = [pytest.mark.slow, pytest.mark.e2e]
VEILFLOW = str(Path(sys.executable).with_name("veilflow"))


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_the_service_scrubs_over_http_as_the_pipeline_login(
    zones_db: str, conn: psycopg.Connection, customers_policy_path: Path, tmp_path: Path
) -> None:
    db = zones_db.rsplit("/", 1)[1].split("?")[0]
    tag = f"{os.getpid()}_{id(conn) % 100000}"
    pipeline, admin = f"vf_api_pipeline_{tag}", f"vf_api_admin_{tag}"
    make_login(conn, pipeline, "veilflow_pipeline")
    make_login(conn, admin, "veilflow_admin")
    env = {**os.environ, "VEILFLOW_POLICIES": str(customers_policy_path.parent)}
    token_file = tmp_path / "token"
    issued = subprocess.run(
        [VEILFLOW, "api", "token", "issue", "e2e", "--dataset", "customers", "--out", str(token_file)],
        env={**env, "VEILFLOW_DATABASE_URL": with_database(zones_db, db, user=admin)},
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert issued.returncode == 0, issued.stderr
    token = token_file.read_text().strip()
    port = _port()
    server = subprocess.Popen(
        [VEILFLOW, "serve", "--port", str(port), "--workers", "2"],
        env={**env, "VEILFLOW_DATABASE_URL": with_database(zones_db, db, user=pipeline)},
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 240
        while True:
            assert server.poll() is None, server.communicate()[1][-3000:]
            assert time.monotonic() < deadline, "veilflow serve did not answer /health"
            try:
                if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        auth = {"Authorization": f"Bearer {token}"}
        text = "Ring Ottilie Brandvold on 412-555-0188 or mail ob@example.org."
        with httpx.Client(base_url=url, timeout=60) as http:
            outs = [http.post("/scrub", json={"text": text}, headers=auth) for _ in range(6)]
            assert [r.status_code for r in outs] == [200] * 6
            # Both worker processes write the same thing: the tokens come from the vault.
            assert len({r.json()["text"] for r in outs}) == 1
            out = outs[0].json()["text"]
            assert "ob@example.org" not in out and "412-555-0188" not in out
            assert "Brandvold" not in out and "@example.org" in out  # keep_domain, as the policy
            assert http.post("/scrub", json={"text": text}).status_code == 401
    finally:
        server.send_signal(signal.SIGINT)
        _, err = server.communicate(timeout=120)
    assert server.returncode == 0, err[-3000:]
    for secret in ("Brandvold", "ob@example.org", token):
        assert secret not in err
    rows = conn.execute(
        "SELECT actor, details FROM governance.audit_log WHERE action = 'api.usage'"
    ).fetchall()
    assert {r[0] for r in rows} == {pipeline}
    ok = sum(r[1].get("statuses", {}).get("200", 0) for r in rows)
    refused = sum(r[1].get("statuses", {}).get("401", 0) for r in rows)
    assert (ok, refused) == (6, 1)
