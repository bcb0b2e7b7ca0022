"""Re-identification: turn a column's tokens or ciphertexts back into the originals, for a
steward with a stated purpose. Checked, then audited (who, purpose, column, count — never a
value) and committed before any original is returned.

* ``ff1`` columns decrypt with the key version the run recorded in its manifest
  (``columns[].key`` = ``<dataset>/ff1@v<N>``; the latest published run unless a run is named).
* ``tokenize`` columns are one-way HMAC tokens: they are reversed by re-tokenizing the source
  column of the restricted zone under each token's key version (read from ``tok_v<N>_…``, or
  from the manifest for the format-preserving form) and matching. A value deleted from the
  source since the run cannot be found and comes back as None (counted as unmatched).

A destroyed key version makes its tokens irreversible, and says so (``KeyDestroyed``).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
import psycopg
import pyarrow as pa
import pyarrow.compute as pc
from psycopg import sql

from veilflow.errors import KeyNotFound, VeilflowError
from veilflow.policy.model import Policy
from veilflow.transform.base import STRING, ChunkContext, ColumnContext
from veilflow.transform.keys import DataKey, parse_key_ref
from veilflow.vault.access import require
from veilflow.vault.audit import record
from veilflow.vault.keys import resolve, unwrap
from veilflow.vault.master import MasterKeyProvider
from veilflow.zones.manifest import RunManifest
from veilflow.zones.runs import published_manifest

log = logging.getLogger(__name__)

REVERSIBLE = ("tokenize", "ff1")
#: Source rows re-tokenized per round trip when matching tokens.
SCAN_ROWS = 200_000


@dataclass(frozen=True)
class Reidentified:
    """Originals in the order of the tokens asked for (None where nothing matched)."""

    values: list[str | None]
    matched: int
    versions: list[str]
    run_id: str | None
    counters: dict[str, int] = field(default_factory=dict)


class _PinnedKeys:
    """A ``KeyProvider`` that hands out exactly the versions it was given."""

    def __init__(self, keys: dict[str, DataKey]) -> None:
        self._keys = keys

    def __repr__(self) -> str:
        return f"_PinnedKeys({sorted(k.ref for k in self._keys.values())})"

    def data_key(self, dataset: str, purpose: str, version: int | None = None) -> DataKey:
        key = self._keys.get(purpose)
        if key is None or (version is not None and version != key.version):
            raise KeyNotFound(f"no data key {dataset}/{purpose} for this re-identification")
        return key


def _recorded_version(
    manifest: RunManifest | None, column: str, purpose: str, run_id: str | None
) -> int:
    for entry in manifest.columns if manifest else ():
        if entry.name == column and entry.key:
            _, p, version = parse_key_ref(entry.key)
            if p == purpose and version is not None:
                return version
    where = f"run {run_id}" if run_id else "any published run"
    raise VeilflowError(f"{where} records no {purpose} key version for column {column!r}")


def _key(
    conn: psycopg.Connection, master: MasterKeyProvider, scope: str, purpose: str, version: int
) -> DataKey:
    return unwrap(master, resolve(conn, scope, purpose, version))


def reidentify(
    conn: psycopg.Connection,
    master: MasterKeyProvider,
    policy: Policy,
    column: str,
    tokens: Sequence[str | None],
    purpose: str,
    *,
    run_id: str | None = None,
) -> Reidentified:
    """The originals of ``tokens`` (values of ``column`` as published by ``policy``).

    ``conn`` is the caller's own connection: its login must hold ``veilflow_steward``; the
    attempt is audited whether it is allowed, denied or fails."""
    target = f"{policy.dataset}.{column}"
    require(
        conn, "reidentify", action="reidentify", target=target, purpose=purpose, count=len(tokens)
    )
    spec = policy.columns.get(column)
    try:
        if spec is None:
            raise VeilflowError(f"policy {policy.dataset} declares no column {column!r}")
        if spec.action not in REVERSIBLE:
            raise VeilflowError(
                f"column {column!r} is '{spec.action}', which cannot be "
                f"reversed; reversible: {', '.join(REVERSIBLE)}"
            )
        found = published_manifest(conn, policy.dataset, run_id)
        used_run, manifest = found if found else (None, None)
        if spec.action == "ff1":
            result = _decrypt_ff1(
                conn, master, policy, column, spec.params, tokens, manifest, used_run
            )
        else:
            result = _match_tokens(
                conn, master, policy, column, spec.params, tokens, manifest, used_run
            )
    except VeilflowError as exc:
        record(
            conn,
            "reidentify",
            target=target,
            purpose=purpose,
            count=len(tokens),
            outcome="error",
            details={"error": type(exc).__name__, "reason": str(exc)[:300]},
        )
        raise
    record(
        conn,
        "reidentify",
        target=target,
        purpose=purpose,
        count=len(tokens),
        details={
            "matched": result.matched,
            "key_versions": result.versions,
            "run_id": result.run_id,
            "action": spec.action,
            **result.counters,
        },
    )
    return result


def _decrypt_ff1(
    conn: psycopg.Connection,
    master: MasterKeyProvider,
    policy: Policy,
    column: str,
    params: dict[str, Any],
    tokens: Sequence[str | None],
    manifest: RunManifest | None,
    run_id: str | None,
) -> Reidentified:
    from veilflow.transform.operators.fpe import FF1Encrypt

    config = FF1Encrypt.Config(**params)
    if getattr(config, "context_column", None):
        raise VeilflowError(
            f"column {column!r} is encrypted with a context column; "
            "re-identify it together with that column's values (not supported "
            "from a token list)"
        )
    version = _recorded_version(manifest, column, "ff1", run_id)
    key = _key(conn, master, policy.scope, "ff1", version)
    op = FF1Encrypt(
        config, ColumnContext(dataset=policy.scope, column=column, keys=_PinnedKeys({"ff1": key}))
    )
    values = pd.Series(pd.array(list(tokens), dtype=STRING))
    chunk = ChunkContext(frame=pd.DataFrame({"_row": range(len(values))}), key_column="_row")
    out = op.decrypt_values(values, chunk, key_version=key.version)
    plain: list[str | None] = [None if pd.isna(v) else str(v) for v in out]
    not_reversible = sum(chunk.counters.get(column, {}).values())
    for i, (tok, orig) in enumerate(zip(tokens, plain, strict=True)):
        if orig == tok and tok is not None and tok.startswith("tok_"):
            plain[i] = None  # an invalid input that was tokenized, not encrypted
    matched = sum(v is not None for v in plain)
    return Reidentified(
        plain,
        matched,
        [key.ref],
        run_id,
        {"not_reversible": not_reversible} if not_reversible else {},
    )


def _match_tokens(
    conn: psycopg.Connection,
    master: MasterKeyProvider,
    policy: Policy,
    column: str,
    params: dict[str, Any],
    tokens: Sequence[str | None],
    manifest: RunManifest | None,
    run_id: str | None,
) -> Reidentified:
    from veilflow.policy.operators import TokenizeConfig
    from veilflow.transform.operators.tokenize import tokenize_array

    config = TokenizeConfig(**params)
    wanted: dict[int, set[str]] = {}
    if config.format == "readable":
        head = re.compile(rf"^{re.escape(config.prefix)}_v(\d+)_")
        for tok in tokens:
            m = head.match(tok) if tok else None
            if m:
                wanted.setdefault(int(m.group(1)), set()).add(tok)  # type: ignore[arg-type]
    else:
        version = _recorded_version(manifest, column, "token", run_id)
        wanted[version] = {t for t in tokens if t}
    keys = {v: _key(conn, master, policy.scope, "token", v) for v in sorted(wanted)}
    originals: dict[str, str] = {}
    ambiguous = 0
    src = sql.Identifier(policy.source.schema_name, policy.source.table_name)
    col = sql.Identifier(column)
    pending = {v: pa.array(sorted(s), type=pa.large_string()) for v, s in wanted.items()}
    if pending:
        with conn.transaction(), conn.cursor(name="veilflow_reidentify") as cur:
            cur.itersize = SCAN_ROWS
            cur.execute(
                sql.SQL("SELECT {c}::text FROM {s} WHERE {c} IS NOT NULL").format(c=col, s=src)
            )
            while True:
                batch = [r[0] for r in cur.fetchmany(SCAN_ROWS)]
                if not batch:
                    break
                source = pa.array(batch, type=pa.large_string())
                for version, want in pending.items():
                    out, _ = tokenize_array(source, keys[version], config)
                    hit = pc.is_in(out, value_set=want)
                    if not pc.any(hit).as_py():
                        continue
                    for tok, orig in zip(
                        pc.filter(out, hit).to_pylist(),
                        pc.filter(source, hit).to_pylist(),
                        strict=True,
                    ):
                        seen = originals.setdefault(tok, orig)
                        ambiguous += seen != orig
    values = [originals.get(t) if t else None for t in tokens]
    matched = sum(v is not None for v in values)
    counters = {"unmatched": sum(1 for t, v in zip(tokens, values, strict=True) if t and v is None)}
    if ambiguous:
        counters["ambiguous"] = ambiguous
    return Reidentified(values, matched, [k.ref for k in keys.values()], run_id, counters)
