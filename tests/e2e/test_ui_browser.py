"""The governance UI inside the real Airflow UI, driven in headless Chromium.

A customers run with lineage is stored first; then ``airflow standalone`` serves the Airflow
UI (with the veilflow plugin) on a free port, with three Airflow users: ``admin`` (Airflow
admin: veilflow admin), ``vera`` (Airflow viewer: veilflow viewer) and ``audrey`` (Airflow
viewer, made a veilflow auditor by ``VEILFLOW_UI_ROLES``). The UI reaches the database as a
login that may only SET its group roles, as the deployed UI's does.

In the browser: the admin opens the lineage explorer for ``customers`` from Airflow's plugin
page, sees the column graph, grants a role on the Access page, and is refused the audit log
(separation of duties); vera sees lineage and runs and is refused access, keys and audit;
audrey finds the grant in the audit log under the admin's name and verifies the chain.
Screenshots go to ``artifacts/screenshots/``. Without a login the plugin's endpoints refuse.
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
from typing import Any

import httpx
import psycopg
import pytest

from tests.e2e.conftest import ROOT
from tests.tooling import needs

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
UI_LOGIN = "vf_e2e_ui_svc"


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
    """`airflow standalone` on a free port against this test's zones database, the UI as a
    login that may only SET veilflow_viewer, veilflow_auditor and veilflow_admin; always
    stopped (its whole process group) at the end."""
    from tests.conftest import make_login
    from veilflow.zones.db import with_database

    with psycopg.connect(customers_run, autocommit=True) as conn:
        make_login(conn, UI_LOGIN)
        for group in ("veilflow_viewer", "veilflow_auditor", "veilflow_admin"):
            conn.execute(f'GRANT {group} TO "{UI_LOGIN}" WITH INHERIT FALSE, SET TRUE')
    database = customers_run.rsplit("/", 1)[-1].split("?", 1)[0]
    policies = tmp_path / "policies"  # no DAGs to parse: the UI is what is under test
    policies.mkdir()
    home = tmp_path / "airflow_home"
    home.mkdir()
    port = free_port()
    env = {
        **airflow_session,
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__API__PORT": str(port),
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "admin:admin,vera:viewer,audrey:viewer",
        "AIRFLOW__CORE__LAZY_LOAD_PLUGINS": "False",
        "VEILFLOW_DATABASE_URL": customers_run,
        "VEILFLOW_UI_DATABASE_URL": with_database(customers_run, database, user=UI_LOGIN),
        "VEILFLOW_UI_ROLES": "audrey:auditor",
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
        with psycopg.connect(customers_run, autocommit=True) as conn:
            conn.execute(f'DROP ROLE IF EXISTS "{UI_LOGIN}"')


def token(ui: AirflowUi, user: str) -> str:
    r = httpx.post(
        f"{ui.base}/auth/token", json={"username": user, "password": ui.passwords[user]}, timeout=30
    )
    r.raise_for_status()
    return str(r.json()["access_token"])


def status_of(ui: AirflowUi, user: str, path: str) -> int:
    headers = {"Authorization": f"Bearer {token(ui, user)}"}
    return httpx.get(f"{ui.base}/veilflow{path}", headers=headers, timeout=30).status_code


def log_in(browser: Any, ui: AirflowUi, user: str) -> Any:
    """A fresh browser context logged in to Airflow as ``user`` through its own form."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    context.set_default_timeout(60_000)
    page = context.new_page()
    page.goto(f"{ui.base}/", wait_until="domcontentloaded")
    page.fill("input[name=username]", user)
    page.fill("input[name=password]", ui.passwords[user])
    page.click("button:has-text('Sign in')")
    page.wait_for_url(lambda url: "/auth/login" not in url, timeout=60_000)
    assert any(c["name"] == "_token" for c in context.cookies())
    return page


def plugin_frame(page: Any, ui: AirflowUi, slug: str) -> Any:
    """Airflow's plugin page for a veilflow page, and the frame the app renders in."""
    page.goto(f"{ui.base}/plugin/veilflow-{slug}", wait_until="domcontentloaded")
    return page.frame_locator(f"iframe[src*='veilflow/{slug}']")


@needs(CHROMIUM.exists(), "Debian's chromium", "scripts/system-deps.sh installs it")
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

    # The plugin's endpoints are not Airflow's: without a login they refuse by themselves.
    # Past Airflow's login, each page asks for its veilflow role.
    assert httpx.get(f"{base}/veilflow/lineage", timeout=30).status_code == 401
    expected = {
        "vera": {"/lineage": 200, "/runs": 200, "/access": 403, "/keys": 403, "/audit": 403},
        "audrey": {"/lineage": 200, "/runs": 200, "/access": 200, "/keys": 403, "/audit": 200},
        "admin": {"/lineage": 200, "/runs": 200, "/access": 200, "/keys": 200, "/audit": 403},
    }
    for user, pages in expected.items():
        got = {path: status_of(airflow_ui, user, path) for path in pages}
        assert got == pages, user
    assert status_of(airflow_ui, "vera", "/audit?verify_chain=1") == 403
    assert status_of(airflow_ui, "admin", "/audit?verify_chain=1") == 403
    refused = httpx.post(
        f"{base}/veilflow/access/grant",
        headers={"Authorization": f"Bearer {token(airflow_ui, 'vera')}"},
        timeout=30,
        data={"login": ANALYST, "role": "steward"},
    )
    assert refused.status_code == 403

    SHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            # the admin: the lineage explorer, inside Airflow's plugin page, down to the graph
            page_ = log_in(browser, airflow_ui, "admin")
            frame = plugin_frame(page_, airflow_ui, "lineage")
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
            frame = plugin_frame(page_, airflow_ui, "access")
            form = frame.locator("#grant-form")
            form.locator("input[name=login]").fill(ANALYST)
            form.locator("select[name=role]").select_option("ml_engineer")
            form.locator("button[type=submit]").click()
            expect(frame.locator(".flash.ok")).to_contain_text(
                f"Granted veilflow_ml_engineer to {ANALYST}"
            )
            expect(frame.locator(f"tr[data-login='{ANALYST}']")).to_be_visible()
            page_.screenshot(path=str(SHOTS / "ui-access-granted.png"), full_page=True)

            # ... and is no auditor: the audit log is not theirs to read
            frame = plugin_frame(page_, airflow_ui, "audit")
            expect(frame.locator(".error-message")).to_contain_text(
                "The Audit page needs the veilflow role auditor; Airflow user admin has admin."
            )
            expect(frame.locator("header nav a", has_text="Audit")).to_have_count(0)
            page_.context.close()

            # vera, an Airflow viewer: lineage and runs, nothing of governance
            page_ = log_in(browser, airflow_ui, "vera")
            frame = plugin_frame(page_, airflow_ui, "runs")
            expect(frame.locator(f"text={RUN_ID}").first).to_be_visible()
            assert frame.locator("header nav a").all_text_contents() == ["Lineage", "Runs"]
            for slug, role in (
                ("access", "admin or auditor"),
                ("keys", "admin"),
                ("audit", "auditor"),
            ):
                frame = plugin_frame(page_, airflow_ui, slug)
                expect(frame.locator(".error-message")).to_contain_text(
                    f"needs the veilflow role {role}; Airflow user vera has viewer."
                )
            page_.screenshot(path=str(SHOTS / "ui-viewer-refused-audit.png"), full_page=True)
            page_.context.close()

            # audrey, an auditor: the grant in the audit log under the admin's name; the
            # chain verifies
            page_ = log_in(browser, airflow_ui, "audrey")
            frame = plugin_frame(page_, airflow_ui, "audit")
            frame.locator("input[name=action]").fill("ui.access.grant")
            frame.locator("#verify-chain").click()
            expect(frame.locator(".flash.chain")).to_contain_text("Audit chain intact")
            row = frame.locator("table.audit tr", has_text=ANALYST).first
            expect(row).to_contain_text("ui.access.grant")
            expect(row).to_contain_text("admin")
            page_.screenshot(path=str(SHOTS / "ui-audit-grant.png"), full_page=True)
            page_.context.close()
        finally:
            browser.close()

    with psycopg.connect(zones_db, autocommit=True) as conn:
        member = conn.execute(
            "SELECT pg_has_role(%s, 'veilflow_ml_engineer', 'USAGE')", (ANALYST,)
        ).fetchone()
        audited = conn.execute(
            "SELECT details->>'airflow_user', outcome, actor FROM governance.audit_log"
            " WHERE action = 'ui.access.grant' AND target = %s ORDER BY seq",
            (f"{ANALYST} ml_engineer",),
        ).fetchall()
        granted_by = conn.execute(
            "SELECT actor FROM governance.audit_log WHERE action = 'access.grant' AND target = %s",
            (ANALYST,),
        ).fetchall()
        refusals = conn.execute(
            "SELECT details->>'airflow_user' FROM governance.audit_log"
            " WHERE action = 'ui.access.grant' AND outcome = 'denied'"
        ).fetchall()
        conn.execute(f'DROP ROLE IF EXISTS "{ANALYST}"')
    assert member == (True,)
    # the UI's SET-only login acted (as veilflow_admin), and the database names it
    assert audited == [("admin", "ok", UI_LOGIN)]
    assert granted_by == [(UI_LOGIN,)]
    assert refusals == [("vera",)]
