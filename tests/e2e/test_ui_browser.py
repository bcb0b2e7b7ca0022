"""The governance UI inside the real Airflow UI, driven in headless Chromium.

A customers run with lineage is stored first; then ``airflow standalone`` serves the Airflow
UI (with the veilflow plugin) on a free port. In the browser: log in to Airflow, open the
lineage explorer for ``customers`` from Airflow's plugin page, see the column graph, grant a
role on the Access page, and find the grant in the audit log under the Airflow user's name.
Screenshots go to ``artifacts/screenshots/``. Without a login, and as a non-admin Airflow
user, the plugin's endpoints refuse.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import psycopg
import pytest

from tests.e2e.conftest import ROOT

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SHOTS = ROOT / "artifacts" / "screenshots"
RUN_ID = "customers:manual__2026-11-27T06:00:00+00:00"
ANALYST = "vf_e2e_analyst"


@dataclass(frozen=True)
class AirflowUi:
    base: str
    passwords: dict[str, str]
    log: Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def customers_run(seeded_db: str, customers_policy_path: Path) -> str:
    """The customers policy run in-process (its stages emit lineage as the DAG's tasks do).
    Published or quarantined by the gate, the run's lineage is stored either way."""
    from veilflow.errors import ValidationFailed
    from veilflow.pipeline.runner import run_policy
    from veilflow.policy import load_policy

    try:
        run_policy(load_policy(customers_policy_path), run_id=RUN_ID, workers=1)
    except ValidationFailed:
        pass
    return seeded_db


@pytest.fixture
def airflow_ui(
    airflow_session: dict[str, str], customers_run: str, tmp_path: Path
) -> Iterator[AirflowUi]:
    """`airflow standalone` on a free port against this test's zones database; always
    stopped (its whole process group) at the end."""
    policies = tmp_path / "policies"  # no DAGs to parse: the UI is what is under test
    policies.mkdir()
    home = tmp_path / "airflow_home"
    home.mkdir()
    port = free_port()
    env = {
        **airflow_session,
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__API__PORT": str(port),
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "admin:admin,victor:viewer",
        "AIRFLOW__CORE__LAZY_LOAD_PLUGINS": "False",
        "VEILFLOW_DATABASE_URL": customers_run,
        "VEILFLOW_POLICIES": str(policies),
    }
    log = tmp_path / "standalone.log"
    with log.open("w") as out:
        proc = subprocess.Popen(
            ["airflow", "standalone"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            cwd=tmp_path,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 240
        while True:
            if proc.poll() is not None:
                pytest.fail(
                    f"airflow standalone exited ({proc.returncode}):\n" + log.read_text()[-4000:]
                )
            try:
                if httpx.get(f"{base}/api/v2/monitor/health", timeout=3).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                pytest.fail("Airflow UI not healthy within 240 s:\n" + log.read_text()[-4000:])
            time.sleep(1.5)
        secrets_file = home / "simple_auth_manager_passwords.json.generated"
        passwords = json.loads(secrets_file.read_text())
        yield AirflowUi(base, passwords, log)
    finally:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=30)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            proc.wait(timeout=10)


def token(ui: AirflowUi, user: str) -> str:
    r = httpx.post(
        f"{ui.base}/auth/token", json={"username": user, "password": ui.passwords[user]}, timeout=30
    )
    r.raise_for_status()
    return str(r.json()["access_token"])


@pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian's chromium is not installed")
def test_lineage_graph_grant_and_audit_in_the_airflow_ui(
    airflow_ui: AirflowUi, customers_policy_path: Path
) -> None:
    from playwright.sync_api import expect, sync_playwright

    from tests.conftest import make_login
    from veilflow.policy import load_policy

    zones_db = os.environ["VEILFLOW_DATABASE_URL"]
    with psycopg.connect(zones_db, autocommit=True) as conn:
        make_login(conn, ANALYST)
    columns = [
        n for n, spec in load_policy(customers_policy_path).columns.items() if spec.action != "drop"
    ]
    base = airflow_ui.base

    # The plugin's endpoints are not Airflow's: without a login they refuse by themselves,
    # and a non-admin Airflow user sees the pages but may not change grants.
    assert httpx.get(f"{base}/veilflow/lineage", timeout=30).status_code == 401
    viewer = {"Authorization": f"Bearer {token(airflow_ui, 'victor')}"}
    page = httpx.get(f"{base}/veilflow/access", headers=viewer, timeout=30)
    assert page.status_code == 200 and "grant-form" not in page.text
    refused = httpx.post(
        f"{base}/veilflow/access/grant",
        headers=viewer,
        timeout=30,
        data={"login": ANALYST, "role": "steward"},
    )
    assert refused.status_code == 403

    SHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            context = browser.new_context(viewport={"width": 1400, "height": 1000})
            context.set_default_timeout(60_000)
            page_ = context.new_page()

            # log in through Airflow's own form
            page_.goto(f"{base}/", wait_until="domcontentloaded")
            page_.fill("input[name=username]", "admin")
            page_.fill("input[name=password]", airflow_ui.passwords["admin"])
            page_.click("button:has-text('Sign in')")
            page_.wait_for_url(lambda url: "/auth/login" not in url, timeout=60_000)
            assert any(c["name"] == "_token" for c in context.cookies())

            # the lineage explorer, inside Airflow's plugin page, down to the column graph
            page_.goto(f"{base}/plugin/veilflow-lineage", wait_until="domcontentloaded")
            frame = page_.frame_locator("iframe[src*='veilflow/lineage']")
            expect(frame.locator("text=Lineage explorer")).to_be_visible()
            frame.locator("table.datasets a", has_text="customers").click()
            graph = frame.locator("svg.lineage-graph")
            expect(graph).to_be_visible()
            outputs = frame.locator("svg.lineage-graph g.vf-out text").all_text_contents()
            assert outputs == columns
            ops = frame.locator("svg.lineage-graph g.vf-op text").all_text_contents()
            assert "tokenize · customers/token@v1" in ops
            expect(frame.locator(f"text={RUN_ID}").first).to_be_visible()
            page_.screenshot(path=str(SHOTS / "ui-lineage-customers.png"), full_page=True)

            # grant a role on the Access page
            page_.goto(f"{base}/plugin/veilflow-access", wait_until="domcontentloaded")
            frame = page_.frame_locator("iframe[src*='veilflow/access']")
            form = frame.locator("#grant-form")
            form.locator("input[name=login]").fill(ANALYST)
            form.locator("select[name=role]").select_option("ml_engineer")
            form.locator("button[type=submit]").click()
            expect(frame.locator(".flash.ok")).to_contain_text(
                f"Granted veilflow_ml_engineer to {ANALYST}"
            )
            expect(frame.locator(f"tr[data-login='{ANALYST}']")).to_be_visible()
            page_.screenshot(path=str(SHOTS / "ui-access-granted.png"), full_page=True)

            # the grant in the audit log, under the Airflow user's name; the chain verifies
            page_.goto(f"{base}/plugin/veilflow-audit", wait_until="domcontentloaded")
            frame = page_.frame_locator("iframe[src*='veilflow/audit']")
            frame.locator("input[name=action]").fill("ui.access.grant")
            frame.locator("#verify-chain").click()
            expect(frame.locator(".flash.chain")).to_contain_text("Audit chain intact")
            row = frame.locator("table.audit tr", has_text=ANALYST).first
            expect(row).to_contain_text("ui.access.grant")
            expect(row).to_contain_text("admin")
            page_.screenshot(path=str(SHOTS / "ui-audit-grant.png"), full_page=True)
        finally:
            browser.close()

    with psycopg.connect(zones_db, autocommit=True) as conn:
        member = conn.execute(
            "SELECT pg_has_role(%s, 'veilflow_ml_engineer', 'USAGE')", (ANALYST,)
        ).fetchone()
        audited = conn.execute(
            "SELECT details->>'airflow_user', outcome FROM governance.audit_log"
            " WHERE action = 'ui.access.grant' AND target = %s ORDER BY seq",
            (f"{ANALYST} ml_engineer",),
        ).fetchall()
        refusals = conn.execute(
            "SELECT details->>'airflow_user' FROM governance.audit_log"
            " WHERE action = 'ui.access.grant' AND outcome = 'denied'"
        ).fetchall()
        conn.execute(f'DROP ROLE IF EXISTS "{ANALYST}"')
    assert member == (True,)
    assert audited == [("admin", "ok")]
    assert refusals == [("victor",)]
