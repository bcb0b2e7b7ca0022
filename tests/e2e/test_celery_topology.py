"""The production topology of docker-compose.yml, run natively: Redis as the Celery broker,
the session's embedded PostgreSQL as Airflow's metadata DB, Celery's result backend and the
zones, and Airflow 3 with the CeleryExecutor as separate processes (api-server, scheduler,
dag-processor, celery worker with two slots).

With the stack's logins, not the server's superuser: `veilflow db upgrade` runs first as
airflow-init does (``VEILFLOW_MIGRATE_DATABASE_URL`` the superuser,
``VEILFLOW_PIPELINE_PASSWORD`` set) and makes ``veilflow_pipeline_svc``; every Airflow process
gets that login in ``VEILFLOW_DATABASE_URL``, and Airflow's metadata database belongs to a
login of its own, as the compose file's ``airflow``. No process has ``PGPASSWORD`` to fall
back on.

The customers DAG is unpaused and triggered from the CLI like an operator would; the test
waits for the run, then checks the published table, the governance record, that every
task went through Celery: each task instance's Celery task id is in the worker's log next to
the task instance's id, and Celery's result backend (a table in PostgreSQL) says it succeeded,
and that the audit log names the pipeline's login for everything the run did, a login which
may neither read that log nor change a data key.

Everything listens on 127.0.0.1 only (serve-logs is skipped), and every process started here
(with the task processes they fork, which run in process groups of their own) is stopped at
the end, whatever happened.
"""

from __future__ import annotations

import itertools
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote, urlparse, urlunparse

import httpx
import psutil
import psycopg
import pytest
from psycopg import sql

from tests.e2e.conftest import ROOT
from tests.tooling import require

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

REDIS = shutil.which("redis-server") or "/usr/bin/redis-server"
METADATA_DB = "airflow_celery"
#: Owner of METADATA_DB, as the compose stack's airflow login owns database airflow.
METADATA_LOGIN = "airflow_celery_owner"
PIPELINE_LOGIN = "veilflow_pipeline_svc"
DAG_ID = "veilflow_customers"
RUN_ID = "manual__celery_topology"
RUN_ID_INCREMENTAL = "manual__celery_incremental"
RUN_ID_UP_TO_DATE = "manual__celery_up_to_date"
TASKS = ("extract", "transform", "validate", "publish", "cleanup")
RUN_TIMEOUT_S = 360
START_TIMEOUT_S = 180
WORKER_SLOTS = 2
#: Chunks of the 2,000-row table (20 canaries ride along), so mapped transform tasks.
CHUNK_ROWS = 450
CHUNKS = 5
#: The 1,200 rows the incremental run appends (and its 20 canaries), in chunks of 450.
INCREMENTAL_CHUNKS = 3


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def login_url(server: str, database: str, login: str, password: str, driver: str = "") -> str:
    """``server`` (the embedded superuser's URL) as ``login`` with its password."""
    parts = urlparse(server)
    host = parts.netloc.rsplit("@", 1)[-1]
    netloc = f"{quote(login, safe='')}:{quote(password, safe='')}@{host}"
    scheme = "postgresql" + (f"+{driver}" if driver else "")
    return urlunparse((scheme, netloc, "/" + database, "", parts.query, ""))


def without_fallback_password(env: dict[str, str]) -> dict[str, str]:
    """``env`` without libpq's password sources: every login here names its own."""
    return {k: v for k, v in env.items() if k not in ("PGPASSWORD", "PGPASSFILE")}


def tail(path: Path, chars: int = 3000) -> str:
    try:
        return path.read_text(errors="replace")[-chars:]
    except OSError as exc:
        return f"<unreadable: {exc}>"


@dataclass
class Topology:
    """The processes of one native CeleryExecutor stack and where they log."""

    env: dict[str, str] = field(repr=False)  # holds the JWT secret, keys and passwords
    home: Path
    metadata_url: str
    api: str
    pipeline_url: str = field(repr=False)  # the DAG tasks' login, with its password
    logs: dict[str, Path] = field(default_factory=dict)
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict, repr=False)
    seen: dict[int, psutil.Process] = field(default_factory=dict, repr=False)

    def start(self, name: str, *argv: str) -> subprocess.Popen[bytes]:
        log = self.home / f"{name}.log"
        with log.open("wb") as out:
            proc = subprocess.Popen(
                list(argv),
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
                cwd=self.home,
            )
        self.logs[name] = log
        self.procs[name] = proc
        return proc

    def api_token(self) -> str:
        """A bearer token for the REST API, as the admin user the api-server generated."""
        passwords = json.loads(
            (self.home / "simple_auth_manager_passwords.json.generated").read_text()
        )
        r = httpx.post(
            f"{self.api}/auth/token",
            json={"username": "admin", "password": passwords["admin"]},
            timeout=30,
        )
        r.raise_for_status()
        return str(r.json()["access_token"])

    def airflow(self, *args: str, timeout: int = 180) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["airflow", *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            cwd=self.home,
        )

    def track(self) -> None:
        """Remember every descendant seen so far: task processes leave their parent's
        process group, so stopping the groups alone could leave them behind."""
        for proc in self.procs.values():
            try:
                for child in psutil.Process(proc.pid).children(recursive=True):
                    self.seen.setdefault(child.pid, child)
            except psutil.NoSuchProcess:
                pass

    def check_alive(self) -> None:
        for name, proc in self.procs.items():
            if proc.poll() is not None:
                pytest.fail(f"{name} exited with {proc.returncode}\n{self.report()}")

    def report(self) -> str:
        parts = [f"--- {name} ({path}) ---\n{tail(path)}" for name, path in self.logs.items()]
        task_logs = sorted((self.home / "logs").rglob("*.log"), key=lambda p: p.stat().st_mtime)[
            -4:
        ]
        parts += [
            f"--- task log {p.relative_to(self.home)} ---\n{tail(p, 2000)}" for p in task_logs
        ]
        return "\n".join(parts)

    def stop(self) -> None:
        """SIGTERM every process group (Redis last), SIGKILL what outlives a grace period,
        then any descendant still running."""
        self.track()
        order = [n for n in self.procs if n != "redis"] + (
            ["redis"] if "redis" in self.procs else []
        )
        for name in order:
            _signal_group(self.procs[name], signal.SIGTERM)
        deadline = time.monotonic() + 25
        for name in order:
            proc = self.procs[name]
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                _signal_group(proc, signal.SIGKILL)
                proc.wait(timeout=10)
        for child in self.seen.values():
            try:
                if child.is_running():
                    child.kill()
            except psutil.NoSuchProcess:
                pass


def _signal_group(proc: subprocess.Popen[bytes], sig: signal.Signals) -> None:
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, sig)
    except ProcessLookupError:
        pass


def wait_for(
    topology: Topology, what: str, check: Callable[[], object], timeout: float, every: float = 1.0
) -> object:
    """Poll ``check()`` until it returns something truthy; fail with every log's tail."""
    deadline = time.monotonic() + timeout
    while True:
        topology.check_alive()
        topology.track()
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            pytest.fail(f"{what}: not within {timeout:.0f} s\n{topology.report()}")
        time.sleep(every)


def metadata_row(url: str, query: str, *params: object) -> tuple[object, ...] | None:
    with psycopg.connect(url) as conn:
        return conn.execute(query, params).fetchone()


def make_pipeline_login(seeded_db: str, veilflow_home: Path) -> str:
    """``veilflow db upgrade`` as the compose stack's airflow-init runs it; returns the URL
    of the pipeline's login it made, with its password.

    The password is the session's own for that login (``$VEILFLOW_HOME/secrets``): logins
    are the whole server's, and other tests of the session connect with it."""
    from veilflow.zones.logins import LOGINS, password_for

    password = password_for(LOGINS["pipeline"], veilflow_home, create=True)
    url = login_url(seeded_db, urlparse(seeded_db).path.lstrip("/"), PIPELINE_LOGIN, password)
    env = without_fallback_password(dict(os.environ))
    env |= {
        "VEILFLOW_MIGRATE_DATABASE_URL": seeded_db,
        "VEILFLOW_DATABASE_URL": url,
        "VEILFLOW_PIPELINE_PASSWORD": password,
    }
    out = subprocess.run(
        [sys.executable, "-m", "veilflow.cli", "db", "upgrade"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "SELECT session_user::text, usesuper FROM pg_user WHERE usename = session_user"
        ).fetchone()
    assert row == (PIPELINE_LOGIN, False)
    return url


@pytest.fixture
def celery_topology(
    pg_server: str,
    seeded_db: str,
    customers_policy_path: Path,
    veilflow_home: Path,
    tmp_path: Path,
) -> Iterator[Topology]:
    """Redis, api-server, scheduler, dag-processor and a Celery worker on a fresh metadata
    database, pointed at this test's zones database as the pipeline's login and a policies
    folder holding the customers policy (unscheduled: the only run is the one the test
    triggers)."""
    from veilflow.zones.db import with_database

    require(Path(REDIS).exists(), "redis-server", "scripts/system-deps.sh installs it")
    pipeline_url = make_pipeline_login(seeded_db, veilflow_home)
    metadata_password = secrets.token_urlsafe(24)
    admin = with_database(pg_server, "postgres")
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{METADATA_DB}" WITH (FORCE)')
        conn.execute(f'DROP ROLE IF EXISTS "{METADATA_LOGIN}"')
        conn.execute(
            sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(
                sql.Identifier(METADATA_LOGIN), sql.Literal(metadata_password)
            )
        )
        conn.execute(f'CREATE DATABASE "{METADATA_DB}" OWNER "{METADATA_LOGIN}"')

    policies = tmp_path / "policies"
    policies.mkdir()
    text = customers_policy_path.read_text()
    # Unscheduled, and in CHUNKS chunks: with more chunks than worker slots, the slots stay
    # busy together however the scheduler staggers the queueing of the first ones.
    # Incremental by customer_id: the first run is a full run, the test's second appends.
    unscheduled = text.replace('schedule: "@daily"', "schedule: null").replace(
        "chunk_rows: 700", f"chunk_rows: {CHUNK_ROWS}\nincremental: {{cursor: customer_id}}"
    )
    assert "schedule: null" in unscheduled and f"chunk_rows: {CHUNK_ROWS}" in unscheduled, (
        "the demo policy's schedule or chunk_rows line changed; update this test"
    )
    (policies / "customers.yaml").write_text(unscheduled)

    home = tmp_path / "airflow_home"
    home.mkdir()
    redis_port, api_port = free_port(), free_port()
    redis_password = secrets.token_urlsafe(24)  # as docker-compose.yml: the broker has one
    metadata = login_url(pg_server, METADATA_DB, METADATA_LOGIN, metadata_password, "psycopg2")
    env = {
        **without_fallback_password(dict(os.environ)),
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(ROOT / "plugins"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True",
        "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{api_port}/execution/",
        "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_urlsafe(64),
        "AIRFLOW__API__HOST": "127.0.0.1",
        "AIRFLOW__API__PORT": str(api_port),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": metadata,
        "AIRFLOW__CELERY__BROKER_URL": f"redis://:{redis_password}@127.0.0.1:{redis_port}/0",
        "AIRFLOW__CELERY__RESULT_BACKEND": "db+"
        + login_url(pg_server, METADATA_DB, METADATA_LOGIN, metadata_password),
        "AIRFLOW__CELERY__WORKER_CONCURRENCY": str(WORKER_SLOTS),
        "AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK": "False",
        "VEILFLOW_DATABASE_URL": pipeline_url,
        "VEILFLOW_POLICIES": str(policies),
        "PATH": str(Path(sys.executable).parent) + os.pathsep + os.environ.get("PATH", ""),
    }
    topology = Topology(
        env=env,
        home=home,
        metadata_url=with_database(pg_server, METADATA_DB),
        api=f"http://127.0.0.1:{api_port}",
        pipeline_url=pipeline_url,
    )
    try:
        migrated = topology.airflow("db", "migrate", timeout=300)
        assert migrated.returncode == 0, migrated.stdout[-3000:] + migrated.stderr[-3000:]

        topology.start(
            "redis",
            REDIS,
            "--bind",
            "127.0.0.1",
            "--port",
            str(redis_port),
            "--save",
            "",
            "--appendonly",
            "no",
            "--requirepass",
            redis_password,
            "--dir",
            str(home),
        )
        topology.start(
            "api-server",
            "airflow",
            "api-server",
            "--host",
            "127.0.0.1",
            "--port",
            str(api_port),
            "--workers",
            "1",
        )
        topology.start("scheduler", "airflow", "scheduler", "--skip-serve-logs")
        topology.start("dag-processor", "airflow", "dag-processor")
        topology.start(
            "celery-worker",
            "airflow",
            "celery",
            "worker",
            "--concurrency",
            str(WORKER_SLOTS),
            "--skip-serve-logs",
            "--without-gossip",
            "--without-mingle",
            "--celery-hostname",
            "veilflow-e2e@127.0.0.1",
        )

        def healthy() -> bool:
            try:
                return (
                    httpx.get(f"{topology.api}/api/v2/monitor/health", timeout=3).status_code == 200
                )
            except httpx.HTTPError:
                return False

        wait_for(topology, "api-server healthy", healthy, START_TIMEOUT_S, every=2)
        wait_for(
            topology,
            "celery worker ready",
            lambda: "ready." in tail(topology.logs["celery-worker"], 100_000),
            START_TIMEOUT_S,
            every=2,
        )
        wait_for(
            topology,
            f"{DAG_ID} parsed by the dag-processor",
            lambda: metadata_row(
                topology.metadata_url, "SELECT 1 FROM serialized_dag WHERE dag_id = %s", DAG_ID
            ),
            START_TIMEOUT_S,
            every=2,
        )
        yield topology
    finally:
        topology.stop()
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{METADATA_DB}" WITH (FORCE)')
            conn.execute(f'DROP ROLE IF EXISTS "{METADATA_LOGIN}"')


def run_dag(topology: Topology, run_id: str) -> list[tuple[object, ...]]:
    """Trigger the DAG as ``run_id``, wait for it to succeed; its task instances."""
    triggered = topology.airflow("dags", "trigger", DAG_ID, "--run-id", run_id)
    assert triggered.returncode == 0, triggered.stdout[-2000:] + triggered.stderr[-2000:]
    headers = {"Authorization": f"Bearer {topology.api_token()}"}

    def finished() -> object:
        r = httpx.get(
            f"{topology.api}/api/v2/dags/{DAG_ID}/dagRuns/{run_id}", headers=headers, timeout=10
        )
        r.raise_for_status()
        state = r.json()["state"]
        return state in ("success", "failed") and state

    state = wait_for(topology, f"{DAG_ID} run {run_id} finished", finished, RUN_TIMEOUT_S, every=2)
    assert state == "success", topology.report()
    with psycopg.connect(topology.metadata_url) as conn:
        return conn.execute(
            "SELECT id::text, task_id, map_index, state, queue, external_executor_id, "
            "start_date, end_date, queued_dttm "
            "FROM task_instance WHERE dag_id = %s AND run_id = %s ORDER BY task_id, map_index",
            (DAG_ID, run_id),
        ).fetchall()


def assert_slots_shared(tis: list[tuple[object, ...]]) -> None:
    """The worker's two slots shared the chunks: two transform tasks ran at the same time."""
    spans = sorted((t[6], t[7]) for t in tis if t[1] == "transform")
    queued = sorted(t[8] for t in tis if t[1] == "transform")
    assert any(later[0] < earlier[1] for earlier, later in itertools.pairwise(spans)), (
        f"transform (start, end): {spans}; queued at: {queued}"
    )


def test_customers_dag_runs_on_celery_workers(celery_topology: Topology, seeded_db: str) -> None:
    topology = celery_topology
    with psycopg.connect(seeded_db) as conn:
        before = conn.execute("SELECT coalesce(max(seq), 0) FROM governance.audit_log").fetchone()
    assert before is not None
    unpaused = topology.airflow("dags", "unpause", DAG_ID, "--yes")
    assert unpaused.returncode == 0, unpaused.stdout[-2000:] + unpaused.stderr[-2000:]
    tis = run_dag(topology, RUN_ID)

    assert all(t[5] for t in tis), f"task instances without a Celery task id: {tis}"

    def celery_results() -> dict[str, str] | None:
        """Celery's own record of each task, once the worker has written them all: a task
        instance is marked done (through the execution API) just before its Celery task
        returns and its result is stored."""
        with psycopg.connect(topology.metadata_url) as conn:
            rows: dict[str, str] = dict(
                conn.execute("SELECT task_id, status FROM celery_taskmeta").fetchall()
            )
        pending = [t[5] for t in tis if rows.get(t[5]) in (None, "PENDING", "STARTED", "RETRY")]
        return None if pending else rows

    results = wait_for(topology, "Celery results stored", celery_results, 60)
    assert isinstance(results, dict)
    # 2,000 rows in CHUNKS chunks: as many mapped transform task instances.
    assert sorted(t[1] for t in tis) == sorted(
        ["extract", "validate", "publish", "cleanup"] + ["transform"] * CHUNKS
    ), tis
    assert sorted(t[2] for t in tis if t[1] == "transform") == list(range(CHUNKS))
    worker_log = topology.logs["celery-worker"].read_text(errors="replace")
    for ti_id, task_id, map_index, ti_state, queue, celery_id, *_ in tis:
        where = f"{task_id}[{map_index}]"
        assert ti_state == "success", (where, ti_state)
        assert queue == "default", (where, queue)
        # The scheduler handed the task to Celery (its Celery task id is recorded), the
        # worker received and ran that very task instance, and the result backend in
        # PostgreSQL holds the Celery task's success.
        assert celery_id, f"{where}: no Celery task id"
        assert f"[{celery_id}] Executing workload in Celery" in worker_log, where
        line = next(
            ln for ln in worker_log.splitlines() if f"[{celery_id}] Executing workload" in ln
        )
        assert ti_id in line and f"task_id='{task_id}'" in line, (where, line[:400])
        assert results.get(celery_id) == "SUCCESS", (where, results.get(celery_id))

    assert_slots_shared(tis)

    with psycopg.connect(seeded_db) as conn:
        assert conn.execute("SELECT count(*) FROM anonymized.customers").fetchone() == (2000,)
        runs = conn.execute("SELECT run_id, status, rows_out FROM governance.runs").fetchall()
        chunks = conn.execute("SELECT count(*) FROM governance.run_chunks").fetchone()
    assert runs == [(f"customers:{RUN_ID}", "published", 2000)]
    assert chunks == (CHUNKS,)

    # Everything the run wrote to the audit log (its outcome, the data keys it made) names
    # the pipeline's login, never the server's superuser, and that login can neither read
    # the audit log nor change a data key.
    with psycopg.connect(seeded_db) as conn:
        audited = conn.execute(
            "SELECT action, actor, details->>'run_id' FROM governance.audit_log"
            " WHERE seq > %s ORDER BY seq",
            before,
        ).fetchall()
        key_makers = conn.execute("SELECT DISTINCT created_by FROM governance.data_keys").fetchall()
    assert ("policy_run", PIPELINE_LOGIN, f"customers:{RUN_ID}") in audited, audited
    assert any(action == "key.create" for action, _, _ in audited), audited
    assert {actor for _, actor, _ in audited} == {PIPELINE_LOGIN}, audited
    assert key_makers == [(PIPELINE_LOGIN,)]
    with psycopg.connect(topology.pipeline_url) as conn:
        assert conn.info.user == PIPELINE_LOGIN
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("SELECT count(*) FROM governance.audit_log")
        conn.rollback()
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("UPDATE governance.data_keys SET state = 'disabled'")
        conn.rollback()

    # An incremental run (ADR 0017): the source grows by 1,200 rows; the next DAG run takes
    # only those, in three chunks the two slots share, and appends them.
    from veilflow.pipeline.seed import append_customers

    with psycopg.connect(seeded_db) as conn:
        append_customers(conn, 1_200, seed=7)
    tis = run_dag(topology, RUN_ID_INCREMENTAL)
    transforms = [t for t in tis if t[1] == "transform"]
    assert len(transforms) == INCREMENTAL_CHUNKS and all(t[3] == "success" for t in tis), tis
    assert_slots_shared(tis)
    with psycopg.connect(seeded_db) as conn:
        assert conn.execute("SELECT count(*) FROM anonymized.customers").fetchone() == (3200,)
        row = conn.execute(
            "SELECT status, rows_in, rows_out, manifest->'incremental' FROM governance.runs"
            " WHERE run_id = %s",
            (f"customers:{RUN_ID_INCREMENTAL}",),
        ).fetchone()
    assert row is not None and row[:3] == ("published", 1200, 1200), row
    assert (row[3]["mode"], row[3]["from"], row[3]["to"]) == ("append", "2000", "3200"), row[3]

    # No new rows: the run ends at extract; transform, validate and publish are skipped.
    tis = run_dag(topology, RUN_ID_UP_TO_DATE)
    states = {str(t[1]): t[3] for t in tis}
    assert states["extract"] == "success" and states["transform"] == "skipped", states
    with psycopg.connect(seeded_db) as conn:
        row = conn.execute(
            "SELECT status, rows_out, manifest->>'up_to_date' FROM governance.runs"
            " WHERE run_id = %s",
            (f"customers:{RUN_ID_UP_TO_DATE}",),
        ).fetchone()
        assert conn.execute("SELECT count(*) FROM anonymized.customers").fetchone() == (3200,)
    assert row == ("published", 0, "true"), row
