"""The scrub API's tokens (``governance.api_tokens``, migration 0110).

A token is ``vf_`` followed by 43 URL-safe base64 characters (32 random bytes). The database
keeps only its SHA-256: 256 random bits cannot be guessed back from their hash, so no key or
pepper is needed, and a token cannot be shown again after it is issued. Each token belongs to
one calling service (its ``name``), is scoped to one dataset's free-text column (the detection
settings and operators of that column's ``scrub_text``) and carries a request rate.

Admins issue and revoke tokens, admins and auditors list them (never their hashes), and the
service, running as the pipeline's login, may only look a token up by its hash. Every issue,
revoke and refused attempt is in the audit log.
"""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import psycopg

from veilflow.errors import Terminal
from veilflow.vault.access import require
from veilflow.zones.secret_file import new_secret_file

PREFIX = "vf_"
#: What a token looks like; anything else is refused before any lookup.
TOKEN_SHAPE = re.compile(r"^vf_[A-Za-z0-9_-]{43}$")
NAME_SHAPE = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,62}$")


class TokenError(Terminal):
    """A token could not be issued or revoked as asked."""


@dataclass(frozen=True)
class TokenScope:
    """What a live token may do: scrub and detect for one dataset's column at a rate."""

    name: str
    dataset: str
    column: str
    rate_per_second: int


@dataclass(frozen=True)
class TokenInfo:
    """One row of ``api token list``: no hash, no token."""

    name: str
    dataset: str
    column: str
    rate_per_second: int
    created_at: datetime
    created_by: str
    revoked_at: datetime | None

    @property
    def state(self) -> str:
        return "revoked" if self.revoked_at else "live"


def new_token() -> str:
    """A fresh random token."""
    raw = secrets.token_bytes(32)
    return PREFIX + base64.urlsafe_b64encode(raw).decode().rstrip("=")


def token_hash(token: str) -> bytes:
    """The stored form of ``token``."""
    return hashlib.sha256(token.encode()).digest()


def well_formed(token: str) -> bool:
    return bool(TOKEN_SHAPE.match(token))


def issue(
    conn: psycopg.Connection,
    *,
    name: str,
    dataset: str,
    column: str,
    rate_per_second: int,
    out: Path,
) -> None:
    """Issue a token and write it to ``out``, a new file (mode 0600). The file is made first
    and removed again if the database refuses, so a token is never issued without a copy nor
    written without being issued."""
    if not NAME_SHAPE.match(name):
        raise TokenError(
            f"token name {name!r} must be lower-case letters, digits, '_', '.' or '-' "
            "(at most 63, starting with a letter or digit)"
        )
    if not 1 <= rate_per_second <= 100_000:
        raise TokenError(f"rate must be 1..100000 requests per second, got {rate_per_second}")
    require(conn, "api_tokens.manage", action="api_token.issue", target=dataset)
    token = new_token()
    try:
        with new_secret_file(out, token, "the token"):
            with conn.transaction():
                conn.execute(
                    "SELECT governance_api.issue_api_token(%s, %s, %s, %s, %s)",
                    (name, token_hash(token), dataset, column, rate_per_second),
                )
            conn.commit()
    except psycopg.errors.UniqueViolation as exc:
        raise TokenError(str(exc.diag.message_primary or "token name taken")) from None


def revoke(conn: psycopg.Connection, name: str) -> bool:
    """Revoke the token ``name``; False when no live token has that name."""
    require(conn, "api_tokens.manage", action="api_token.revoke", target=name)
    with conn.transaction():
        row = conn.execute("SELECT governance_api.revoke_api_token(%s)", (name,)).fetchone()
    conn.commit()
    return bool(row and row[0])


def list_tokens(conn: psycopg.Connection) -> list[TokenInfo]:
    """Every token, live or revoked, newest first (admins and auditors)."""
    require(conn, "api_tokens.list", action="api_token.list", target="api_tokens")
    rows = conn.execute(
        "SELECT name, dataset, column_name, rate_per_second, created_at, created_by, revoked_at"
        " FROM governance.api_tokens ORDER BY created_at DESC, name"
    ).fetchall()
    return [TokenInfo(*row) for row in rows]


def scope_of(conn: psycopg.Connection, token: str) -> TokenScope | None:
    """The scope of a live token, None for an unknown, revoked or malformed one."""
    if not well_formed(token):
        return None
    row = conn.execute(
        "SELECT name, dataset, column_name, rate_per_second"
        " FROM governance_api.api_token_scope(%s)",
        (token_hash(token),),
    ).fetchone()
    return TokenScope(*row) if row else None
