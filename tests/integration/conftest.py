"""Fixtures for integration tests, by area."""

from __future__ import annotations

import os
from collections.abc import Iterator

import psycopg
import pytest

# ---------------------------------------------------------------------------------------
# vault / access: one real PostgreSQL login per veilflow role (plus one with no role).
# ---------------------------------------------------------------------------------------
VAULT_ROLES = ("pipeline", "steward", "ml_engineer", "auditor", "admin")


@pytest.fixture
def role_logins(conn: psycopg.Connection) -> Iterator[dict[str, str]]:
    """``{"pipeline": "<login>", ..., "nobody": "<login>"}``: LOGIN roles created for this
    test, each a member of exactly one veilflow group role ("nobody" of none); dropped after."""
    from tests.conftest import make_login

    tag = f"{os.getpid()}_{id(conn) % 100000}"
    logins = {role: f"vf_{role}_{tag}" for role in (*VAULT_ROLES, "nobody")}
    for role, login in logins.items():
        make_login(conn, login, *([f"veilflow_{role}"] if role != "nobody" else []))
    yield logins
    for login in logins.values():
        conn.execute(f'DROP OWNED BY "{login}"')
        conn.execute(f'DROP ROLE IF EXISTS "{login}"')
