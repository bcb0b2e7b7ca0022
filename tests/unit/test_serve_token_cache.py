"""The scrub API's token cache: a fresh answer is given without I/O (in the event loop), an
expired one is asked of the database again, so a revoked token stops within the cache time."""

from __future__ import annotations

from typing import Any

import pytest

from veilflow.serve import app as serve_app
from veilflow.serve.app import _Tokens
from veilflow.serve.tokens import TokenScope

TOKEN = "vf_" + "A" * 43


class _Conn:
    """Answers the scope lookup like the database, live until ``revoked``."""

    closed = False

    def __init__(self) -> None:
        self.queries = 0
        self.revoked = False

    def execute(self, sql: str, params: Any) -> _Conn:
        self.queries += 1
        return self

    def fetchone(self) -> tuple[str, str, str, int] | None:
        return None if self.revoked else ("chat", "customers", "note", 100)

    def close(self) -> None:
        pass


def test_fresh_answers_need_no_query_and_expire_with_the_cache_time(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    now = [1000.0]
    monkeypatch.setattr(serve_app.time, "monotonic", lambda: now[0])
    conn = _Conn()
    tokens = _Tokens(lambda: conn, ttl=30.0)  # type: ignore[arg-type,return-value]
    assert tokens.cached(TOKEN) == (False, None)  # never asked: the thread must ask
    scope = tokens.lookup(TOKEN)
    assert scope == TokenScope("chat", "customers", "note", 100)
    assert conn.queries == 1
    conn.revoked = True
    now[0] += 29.9
    assert tokens.cached(TOKEN) == (True, scope)  # within the cache time: no query
    assert conn.queries == 1
    now[0] += 0.2
    assert tokens.cached(TOKEN) == (False, None)  # expired: asked again, and now refused
    assert tokens.lookup(TOKEN) is None
    assert conn.queries == 2
    assert tokens.cached(TOKEN) == (True, None)  # a refusal is cached as well


def test_unknown_token_answers_are_cached_as_unknown() -> None:
    conn = _Conn()
    conn.revoked = True
    tokens = _Tokens(lambda: conn, ttl=30.0)  # type: ignore[arg-type,return-value]
    assert tokens.lookup(TOKEN) is None
    assert tokens.cached(TOKEN) == (True, None)
