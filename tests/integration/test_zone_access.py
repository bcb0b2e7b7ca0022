"""Zones are real schemas with real grants: logins get what their group role allows."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest

from tests.conftest import make_login
from veilflow.pipeline.runner import run_policy
from veilflow.policy import parse_policy
from veilflow.zones.db import connect
from veilflow.zones.migrations import status, upgrade


@pytest.fixture
def published(seeded_db: str, customers_policy_path: Path) -> str:
    run_policy(parse_policy(customers_policy_path.read_text()))
    return seeded_db


def test_ml_engineer_reads_anonymized_but_not_restricted(
    published: str, conn: psycopg.Connection
) -> None:
    make_login(conn, "mle_ada", "veilflow_ml_engineer")
    with connect(published, user="mle_ada") as mle:
        n = mle.execute("SELECT count(*) FROM anonymized.customers").fetchone()
        assert n == (2000,)
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="permission denied"):
            mle.execute("SELECT * FROM restricted.customers LIMIT 1")
        mle.rollback()
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            mle.execute("SELECT * FROM quarantine.anything")


def test_steward_reads_both_zones(published: str, conn: psycopg.Connection) -> None:
    make_login(conn, "steward_sam", "veilflow_steward")
    with connect(published, user="steward_sam") as st:
        assert st.execute("SELECT count(*) FROM restricted.customers").fetchone() == (2000,)
        assert st.execute("SELECT count(*) FROM anonymized.customers").fetchone() == (2000,)


def test_a_login_without_a_role_reads_nothing(published: str, conn: psycopg.Connection) -> None:
    make_login(conn, "nobody_nina")
    with connect(published, user="nobody_nina") as nb:
        for table in ("restricted.customers", "anonymized.customers", "governance.runs"):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                nb.execute(f"SELECT 1 FROM {table} LIMIT 1")
            nb.rollback()


def test_migrations_are_recorded_and_idempotent(conn: psycopg.Connection) -> None:
    assert upgrade(conn) == []  # the template already has them all
    assert all(applied for _, applied in status(conn))
    versions = conn.execute("SELECT version FROM governance.schema_migrations ORDER BY 1")
    assert next(v for (v,) in versions) == 1
