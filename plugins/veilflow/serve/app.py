"""The scrub API: ``POST /scrub``, ``POST /detect``, ``GET /health``.

Every request to ``/scrub`` and ``/detect`` carries ``Authorization: Bearer <token>``; the
token decides the dataset and column whose ``scrub_text`` settings apply. A request is
checked in this order, and the first check that fails answers:

    401  no token, a malformed one, or one that is unknown or revoked
    429  over the token's rate (with Retry-After)
    413  a body over ``max_bytes``
    400  a body that is not UTF-8, not JSON, or not ``{"text": ...}`` / ``{"texts": [...]}``
    403  a ``dataset`` (or ``column``) in the body other than the token's
    503  the database cannot be reached to check a token

No response, log line or audit row holds a request's text; errors name what was wrong with
the request, never its content. Everything is counted (``veilflow.serve.usage``).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import threading
import time
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

from veilflow.serve.batcher import Batcher, Job
from veilflow.serve.limits import RateLimiter, retry_after
from veilflow.serve.scrubber import Scrubbers, policies_by_dataset, scrub_columns
from veilflow.serve.tokens import TokenScope, scope_of, token_hash, well_formed
from veilflow.serve.usage import ANONYMOUS, Usage
from veilflow.transform.keys import KeyProvider

log = logging.getLogger(__name__)

#: The environment ``veilflow serve`` hands its worker processes the settings through.
ENV_PREFIX = "VEILFLOW_SERVE_"


@dataclass(frozen=True)
class ServeConfig:
    policies_dir: Path
    max_bytes: int = 64 * 1024
    max_texts: int = 100
    processes: int = 1
    audit_seconds: float = 60.0
    token_cache_seconds: float = 30.0
    refresh_seconds: float = 300.0
    #: Longest a batch waits, under load, for the requests the last one answered to come back.
    linger_seconds: float = 0.02

    def to_env(self) -> dict[str, str]:
        return {
            f"{ENV_PREFIX}{k.upper()}": str(v) for k, v in self.__dict__.items() if v is not None
        }

    @classmethod
    def from_env(cls) -> ServeConfig:
        from veilflow.config import settings

        def get(name: str, default: Any, kind: Callable[[str], Any]) -> Any:
            raw = os.environ.get(f"{ENV_PREFIX}{name.upper()}")
            return default if raw is None else kind(raw)

        base = cls(policies_dir=settings().policies_dir)
        return cls(
            policies_dir=get("policies_dir", base.policies_dir, Path),
            max_bytes=get("max_bytes", base.max_bytes, int),
            max_texts=get("max_texts", base.max_texts, int),
            processes=get("processes", base.processes, int),
            audit_seconds=get("audit_seconds", base.audit_seconds, float),
            token_cache_seconds=get("token_cache_seconds", base.token_cache_seconds, float),
            refresh_seconds=get("refresh_seconds", base.refresh_seconds, float),
            linger_seconds=get("linger_seconds", base.linger_seconds, float),
        )


class Rejected(Exception):
    """A request answered with an error status; ``message`` names what, never content."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or {}


@dataclass
class _Tokens:
    """Token scopes looked up through the pipeline's login, kept ``ttl`` seconds (so a
    revoked token stops working within that time)."""

    connect: Callable[[], psycopg.Connection]
    ttl: float
    _cache: dict[bytes, tuple[float, TokenScope | None]] = field(default_factory=dict)
    _conn: psycopg.Connection | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def cached(self, token: str) -> tuple[bool, TokenScope | None]:
        """(True, scope) when the cache holds a fresh answer for ``token``, else (False, None):
        answered without I/O, so the event loop asks here first and only a miss goes to a
        thread for the database."""
        hit = self._cache.get(token_hash(token))
        if hit is not None and hit[0] > time.monotonic():
            return True, hit[1]
        return False, None

    def lookup(self, token: str) -> TokenScope | None:
        key = token_hash(token)
        now = time.monotonic()
        hit = self._cache.get(key)
        if hit is not None and hit[0] > now:
            return hit[1]
        with self._lock:
            scope = self._query(token)
            if len(self._cache) > 10_000:
                self._cache.clear()
            self._cache[key] = (now + self.ttl, scope)
        return scope

    def _query(self, token: str) -> TokenScope | None:
        for attempt in (1, 2):
            try:
                if self._conn is None or self._conn.closed:
                    self._conn = self.connect()
                return scope_of(self._conn, token)
            except psycopg.Error:
                if self._conn is not None:
                    self._conn.close()
                self._conn = None
                if attempt == 2:
                    raise
        return None  # pragma: no cover

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()


def _bearer(request: Request) -> str:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Rejected(401, "missing bearer token", {"WWW-Authenticate": "Bearer"})
    token = token.strip()
    if not well_formed(token):
        raise Rejected(401, "malformed token", {"WWW-Authenticate": "Bearer"})
    return token


async def _body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise Rejected(413, f"body over {limit} bytes")
    size = 0
    parts: list[bytes] = []
    async for part in request.stream():
        size += len(part)
        if size > limit:
            raise Rejected(413, f"body over {limit} bytes")
        parts.append(part)
    return b"".join(parts)


def _texts(raw: bytes, scope: TokenScope, max_texts: int) -> tuple[list[str], bool]:
    """The texts of a request body, and whether it held one ``text`` (not a list)."""
    try:
        decoded = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise Rejected(400, f"body is not UTF-8 (byte {exc.start})") from None
    try:
        body = json.loads(decoded)
    except json.JSONDecodeError as exc:
        raise Rejected(400, f"body is not JSON (line {exc.lineno}, column {exc.colno})") from None
    if not isinstance(body, dict):
        raise Rejected(400, 'body must be a JSON object: {"text": "..."} or {"texts": [...]}')
    unknown = sorted(set(body) - {"text", "texts", "dataset", "column"})
    if unknown:
        raise Rejected(400, f"unknown field(s): {', '.join(unknown)}")
    for name, own in (("dataset", scope.dataset), ("column", scope.column)):
        if name in body and body[name] != own:
            raise Rejected(403, f"this token is scoped to another {name}")
    if ("text" in body) == ("texts" in body):
        raise Rejected(400, 'give exactly one of "text" and "texts"')
    if "text" in body:
        if not isinstance(body["text"], str):
            raise Rejected(400, '"text" must be a string')
        return [body["text"]], True
    texts = body["texts"]
    if not isinstance(texts, list) or not all(isinstance(t, str) for t in texts):
        raise Rejected(400, '"texts" must be a list of strings')
    if not 1 <= len(texts) <= max_texts:
        raise Rejected(400, f'"texts" must hold 1 to {max_texts} strings, got {len(texts)}')
    return texts, False


def create_app(
    config: ServeConfig,
    *,
    keys: Callable[[], KeyProvider] | None = None,
    connect: Callable[[], psycopg.Connection] | None = None,
) -> FastAPI:
    """The service. ``keys`` and ``connect`` default to the vault and the pipeline's login."""
    from veilflow.pipeline.keys import default_key_provider
    from veilflow.zones.db import connect as zones_connect

    def pipeline_connect() -> psycopg.Connection:
        return zones_connect(duty="pipeline")

    connect_fn = connect or pipeline_connect
    policies = policies_by_dataset(config.policies_dir)
    scrubbers = Scrubbers(
        policies, keys or default_key_provider, refresh_seconds=config.refresh_seconds
    )
    usage = Usage()
    limiter = RateLimiter(config.processes)
    tokens = _Tokens(connect_fn, config.token_cache_seconds)
    state: dict[str, Any] = {}

    def run(job: Job, texts: list[str]) -> Sequence[Any]:
        operation, dataset, column = job
        if operation == "scrub":
            result = scrubbers.scrub(dataset, column, texts)
            usage.found(dataset, result.entities)
            return result.texts
        return scrubbers.detect(dataset, column, texts)

    def warm() -> None:
        """Compile each servable column and scan once, so no request waits for the models."""
        for dataset in scrubbers.datasets:
            for column in scrub_columns(policies[dataset]):
                scrubbers.scrub(dataset, column, ["warm-up"])

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await asyncio.to_thread(warm)
        batcher = Batcher(run, max_texts=max(64, config.max_texts), linger=config.linger_seconds)
        batcher.start()
        state["batcher"] = batcher

        async def audit_every() -> None:
            while True:
                await asyncio.sleep(config.audit_seconds)
                await asyncio.to_thread(usage.flush, connect_fn)

        flusher = asyncio.get_running_loop().create_task(audit_every())
        try:
            yield
        finally:
            flusher.cancel()
            await batcher.stop()
            await asyncio.to_thread(usage.flush, connect_fn)
            tokens.close()

    app = FastAPI(
        title="veilflow scrub API",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    app.state.usage = usage
    app.state.scrubbers = scrubbers

    async def serve(request: Request, operation: str) -> Response:
        scope: TokenScope | None = None
        status, texts_in, characters = 500, 0, 0
        try:
            token = _bearer(request)
            try:
                fresh, scope = tokens.cached(token)
                if not fresh:
                    scope = await asyncio.to_thread(tokens.lookup, token)
            except psycopg.Error:
                raise Rejected(503, "the token cannot be checked now; try again") from None
            if scope is None:
                raise Rejected(401, "unknown or revoked token", {"WWW-Authenticate": "Bearer"})
            wait = limiter.take(scope.name, scope.rate_per_second)
            if wait:
                raise Rejected(429, "over this token's rate", {"Retry-After": retry_after(wait)})
            texts, single = _texts(await _body(request, config.max_bytes), scope, config.max_texts)
            texts_in, characters = len(texts), sum(len(t) for t in texts)
            job: Job = (operation, scope.dataset, scope.column)
            results = await state["batcher"].submit(job, texts)
            payload = _payload(operation, results, single)
            payload.update(dataset=scope.dataset, column=scope.column)
            status = 200
            return JSONResponse(payload)
        except Rejected as r:
            status = r.status
            return JSONResponse({"error": r.message}, status_code=r.status, headers=r.headers)
        except Exception as exc:
            log.error("%s failed: %s", operation, type(exc).__name__)
            return JSONResponse({"error": "internal error"}, status_code=500)
        finally:
            usage.request(
                operation,
                status,
                token=scope.name if scope else ANONYMOUS,
                dataset=scope.dataset if scope else ANONYMOUS,
                texts=texts_in if status == 200 else 0,
                characters=characters if status == 200 else 0,
            )

    @app.post("/scrub")
    async def scrub(request: Request) -> Response:
        """Text in, text out: each finding replaced as the column's ``scrub_text`` does."""
        return await serve(request, "scrub")

    @app.post("/detect")
    async def detect(request: Request) -> Response:
        """The spans found: start, end (characters), entity and score; never the text."""
        return await serve(request, "detect")

    @app.get("/health")
    async def health() -> Response:
        return JSONResponse(
            {
                "status": "ok",
                "datasets": scrubbers.datasets,
                "batches": state["batcher"].batches if "batcher" in state else 0,
            }
        )

    return app


def _payload(operation: str, results: list[Any], single: bool) -> dict[str, Any]:
    if operation == "scrub":
        return {"text": results[0]} if single else {"texts": results}
    spans = [
        [
            {"start": s.start, "end": s.end, "entity": s.entity, "score": round(s.score, 3)}
            for s in found
        ]
        for found in results
    ]
    return {"spans": spans[0]} if single else {"results": spans}


def app_from_env() -> FastAPI:
    """The factory ``veilflow serve`` gives uvicorn (each worker process calls it)."""
    from veilflow import log_redaction

    log_redaction.install()
    return create_app(ServeConfig.from_env())
