"""Shared fixtures: one embedded PostgreSQL per test session, a fresh database per test.

The session gets its own ``VEILFLOW_HOME`` (a temp folder) and a fixed test master key.
Migrations are applied once to a template database; each test that asks for ``zones_db``
gets a copy of it (``CREATE DATABASE … TEMPLATE``, ~0.1 s) and ``VEILFLOW_DATABASE_URL``
pointing at it, so every part of veilflow under test uses that database.
"""

from __future__ import annotations

import base64
import itertools
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

TEST_MASTER_KEY = base64.b64encode(bytes(range(32))).decode()
#: The password of every login a test makes (``make_login``): the embedded server requires a
#: password of every login but its superuser, and libpq sends ``PGPASSWORD`` when a URL has
#: none. Service logins have passwords of their own (``veilflow.zones.logins``).
TEST_LOGIN_PASSWORD = "veilflow-test-login"
_counter = itertools.count()


@pytest.fixture(scope="session", autouse=True)
def veilflow_home() -> Iterator[Path]:
    """A private state folder and master key for the whole session. Not under pytest's
    rotating basetemp: the embedded server lives here for the whole session."""
    home = Path(tempfile.mkdtemp(prefix="veilflow-test-"))
    saved = {
        k: os.environ.get(k)
        for k in ("VEILFLOW_HOME", "VEILFLOW_MASTER_KEY", "VEILFLOW_DATABASE_URL", "PGPASSWORD")
    }
    os.environ["VEILFLOW_HOME"] = str(home)
    os.environ["VEILFLOW_MASTER_KEY"] = TEST_MASTER_KEY
    os.environ["PGPASSWORD"] = TEST_LOGIN_PASSWORD
    os.environ.pop("VEILFLOW_DATABASE_URL", None)
    yield home
    shutil.rmtree(home, ignore_errors=True)
    for k, v in saved.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


@pytest.fixture(scope="session")
def pg_server(veilflow_home: Path) -> Iterator[str]:
    """Superuser URL of the session's embedded server (stopped at the end)."""
    from veilflow.zones.server import start_embedded, stop_embedded

    pgdata = veilflow_home / "pgdata"
    url = start_embedded(pgdata)
    yield url
    stop_embedded(pgdata)


@pytest.fixture(scope="session")
def template_db(pg_server: str) -> str:
    """A database with every migration applied, used as the template for each test."""
    from veilflow.zones.db import ensure_database, with_database
    from veilflow.zones.migrations import upgrade

    ensure_database(pg_server, "vf_template")
    url = with_database(pg_server, "vf_template")
    with psycopg.connect(url) as conn:
        upgrade(conn)
    return url


@pytest.fixture
def zones_db(pg_server: str, template_db: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A fresh, migrated zones database for this test; veilflow points at it."""
    from veilflow.zones.db import with_database

    name = f"vf_t{os.getpid()}_{next(_counter)}"
    admin = with_database(pg_server, "postgres")
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}" TEMPLATE vf_template')
    url = with_database(pg_server, name)
    monkeypatch.setenv("VEILFLOW_DATABASE_URL", url)
    yield url
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def conn(zones_db: str) -> Iterator[psycopg.Connection]:
    """A superuser connection to this test's zones database (autocommit)."""
    with psycopg.connect(zones_db, autocommit=True) as c:
        yield c


@pytest.fixture
def seeded_db(zones_db: str) -> str:
    """``zones_db`` with 2,000 demo customers in ``restricted.customers``."""
    from veilflow.pipeline.seed import seed_customers

    with psycopg.connect(zones_db) as c:
        seed_customers(c, rows=2_000, seed=7)
    return zones_db


DEMO_POLICY = Path(__file__).resolve().parents[1] / "policies" / "customers.yaml"


def without_releases(text: str) -> str:
    """The policy text without its ``releases:``, ``utility:`` and ``synthetic:`` sections
    (and the comments above them): a run of it needs no privacy budget, trains no model and
    synthesizes nothing. Their own tests keep them."""
    out = re.sub(r"(?m)^(#[^\n]*\n)*(releases|utility|synthetic):\n(( .*)?\n)*", "", text)
    assert not re.search(r"(?m)^(releases|utility|synthetic):", out)
    return out


def without_incremental(text: str) -> str:
    """The policy text without its ``incremental:`` line (and the comments above it): every
    run is a full run, so a test may run it twice on the same rows. Incremental runs have
    tests of their own, which declare the cursor themselves."""
    out = re.sub(r"(?m)^(#[^\n]*\n)*incremental: .*\n", "", text)
    assert not re.search(r"(?m)^incremental:", out)
    return out


def small_data_policy(text: str, chunk_rows: int = 700, incremental: bool = False) -> str:
    """The demo policy tuned for the 2,000-row test table: chunks of ``chunk_rows`` (so runs
    have several), k = l = 1, no ceiling on the risk estimates and no DP releases — on 2,000 rows the demo's
    generalization leaves classes too small for k = 5 (the privacy checks have tests of their
    own). Every run a full run unless ``incremental`` keeps the demo's cursor."""
    out = without_releases(text)
    if not incremental:
        out = without_incremental(out)
    out = (
        out.replace("chunk_rows: 50000", f"chunk_rows: {chunk_rows}")
        .replace("  k: 5\n", "  k: 1\n")
        .replace("  l: 2\n", "  l: 1\n")
        .replace("  max_prosecutor_risk: 0.05\n", "  max_prosecutor_risk: 1.0\n")
        .replace("  max_linkage_risk: 0.01\n", "  max_linkage_risk: 1.0\n")
    )
    assert out != text, "the demo policy changed shape; update small_data_policy"
    return out


@pytest.fixture
def demo_policy_path() -> Path:
    """policies/customers.yaml as shipped."""
    return DEMO_POLICY


@pytest.fixture
def customers_policy_path(tmp_path: Path) -> Path:
    """The demo policy, tuned for the 2,000-row test table (see ``small_data_policy``)."""
    path = tmp_path / "customers.yaml"
    path.write_text(small_data_policy(DEMO_POLICY.read_text()))
    return path


def make_login(conn: psycopg.Connection, login: str, *roles: str) -> None:
    """Create (or reset) a LOGIN role with the test password, a member of the given veilflow
    group roles."""
    conn.execute(f'DROP ROLE IF EXISTS "{login}"')
    conn.execute(f"CREATE ROLE \"{login}\" LOGIN PASSWORD '{TEST_LOGIN_PASSWORD}'")
    for r in roles:
        conn.execute(f'GRANT "{r}" TO "{login}"')
