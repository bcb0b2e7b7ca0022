"""Erasure requests: a data subject's rows leave the anonymized zone and the quarantine, and
stay out of every later run (``veilflow erase``, migration 0115).

A steward states the request with the subject's key and a reason. The key is never stored:
the request holds the tokens the key has in the published tables, the key column's
``tokenize`` under each readable version of the dataset's token key. Working those out
unwraps the token key, which is re-identification-level access, so the steward's own key
check applies and the reason is its stated purpose.

The pipeline's login applies requests, as the only login that may change its tables:

- ``veilflow erase --apply`` deletes the subject's rows from the published table and from
  every quarantined candidate of the dataset, then vacuums those tables so the rows leave
  their files;
- every publish leaves out the rows of every request of the dataset, in the transaction
  that swaps the new version in, and then applies what is pending.

Each request's report counts the rows removed per table, and confirms by a second count that
none are left, without naming the subject. The request and its application are audited
with counts only.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field

import psycopg
import pyarrow as pa
from psycopg import sql
from psycopg.types.json import Jsonb

from veilflow.errors import Terminal
from veilflow.policy.model import Policy
from veilflow.policy.operators import TokenizeConfig
from veilflow.transform.keys import KeyProvider
from veilflow.transform.operators.tokenize import Tokenize, tokenize_array
from veilflow.vault.access import require
from veilflow.vault.audit import record
from veilflow.zones.run_tables import (
    HISTOGRAM_PART,
    published_sketches,
    published_sketches_name,
    table_exists,
)

log = logging.getLogger(__name__)

MIN_REASON = 8


class ErasureError(Terminal):
    """An erasure that cannot be requested or applied as asked."""


@dataclass(frozen=True)
class ErasureReport:
    """What one request removed: rows per table, and rows left after (always 0)."""

    request: int
    dataset: str
    removed: dict[str, int] = field(default_factory=dict)
    left: int = 0
    #: Other subjects' rows of the published table in classes the erasure left smaller
    #: than the policy's k, suppressed so the published table keeps its k.
    suppressed: int = 0

    @property
    def total(self) -> int:
        return sum(self.removed.values())


def key_config(policy: Policy) -> TokenizeConfig:
    """The key column's ``tokenize`` configuration; ``ErasureError`` when it has none."""
    key = policy.source.key
    spec = policy.columns[key]
    if spec.action != Tokenize.name:
        raise ErasureError(
            f"dataset {policy.dataset!r} publishes its key column {key!r} with {spec.action!r};"
            " an erasure finds a subject by the key's token, so the key must be tokenized"
        )
    return TokenizeConfig(**spec.params)


def token_versions(conn: psycopg.Connection, policy: Policy) -> list[int]:
    """The readable versions of the dataset's token key, oldest first."""
    return [
        int(r[0])
        for r in conn.execute(
            "SELECT version FROM governance.data_keys WHERE dataset = %s AND purpose = 'token'"
            " AND state IN ('active', 'retired') ORDER BY version",
            (policy.scope,),
        ).fetchall()
    ]


def subject_tokens(
    conn: psycopg.Connection, policy: Policy, subject: str, keys: KeyProvider
) -> list[str]:
    """The tokens ``subject`` (a source key) has under each readable version of the
    dataset's token key, oldest first."""
    config = key_config(policy)
    versions = token_versions(conn, policy)
    if not versions:
        raise ErasureError(
            f"dataset {policy.dataset!r} has no readable token key, so it has published no"
            " token to erase"
        )
    tokens: list[str] = []
    for version in versions:
        key = keys.data_key(policy.scope, "token", version)
        out, _ = tokenize_array(pa.array([subject], type=pa.large_string()), key, config)
        token = out[0].as_py()
        assert isinstance(token, str)
        tokens.append(token)
    return tokens


def request(
    conn: psycopg.Connection, policy: Policy, subject: str, reason: str, keys: KeyProvider
) -> int:
    """Record an erasure request (stewards; audited). Returns its id."""
    if len(reason.strip()) < MIN_REASON:
        raise ErasureError(f"state the reason (at least {MIN_REASON} characters)")
    require(conn, "reidentify", action="erasure.request", target=policy.dataset, purpose=reason)
    tokens = subject_tokens(conn, policy, subject, keys)
    with conn.transaction():
        row = conn.execute(
            "SELECT governance_api.request_erasure(%s, %s, %s, %s)",
            (policy.dataset, policy.source.key, tokens, reason),
        ).fetchone()
    assert row is not None
    return int(row[0])


def erased_tokens(conn: psycopg.Connection, dataset: str) -> list[str]:
    """Every token of every erasure request of ``dataset``, applied or not."""
    row = conn.execute(
        "SELECT coalesce(array_agg(DISTINCT t), '{}') FROM governance.erasure_requests,"
        " unnest(subject_tokens) AS t WHERE dataset = %s",
        (dataset,),
    ).fetchone()
    return list(row[0]) if row else []


def _tables(conn: psycopg.Connection, policy: Policy) -> list[tuple[str, str]]:
    """The dataset's published table and its quarantined candidates that exist."""
    found = [(policy.target.schema_name, policy.target.table_name)]
    for (qualified,) in conn.execute(
        "SELECT quarantine_table FROM governance.quarantined"
        " WHERE dataset = %s AND quarantine_table IS NOT NULL ORDER BY quarantined_at",
        (policy.dataset,),
    ).fetchall():
        schema, _, name = str(qualified).partition(".")
        found.append((schema, name))
    return [(s, t) for s, t in found if table_exists(conn, s, t)]


def apply(
    conn: psycopg.Connection,
    policy: Policy,
    keep_k: Callable[[psycopg.Connection, Policy], int] | None = None,
) -> list[ErasureReport]:
    """Apply every pending request of the policy's dataset (the pipeline's login): delete
    the subjects' rows from the published table and the quarantined candidates, vacuum
    those tables, record what was removed. ``keep_k`` (``pipeline.erased.keep_k``) then
    suppresses, in the same transaction, the published rows of classes the request left
    below the policy's k. ``conn`` must be in autocommit mode (VACUUM)."""
    require(conn, "encrypt", action="erasure.apply", target=policy.dataset)
    pending = conn.execute(
        "SELECT id, key_column, subject_tokens FROM governance.erasure_requests"
        " WHERE dataset = %s AND applied_at IS NULL ORDER BY id",
        (policy.dataset,),
    ).fetchall()
    if not pending:
        return []
    tables = _tables(conn, policy)
    published_at = (policy.target.schema_name, policy.target.table_name)
    published = ".".join(published_at)
    reports: list[ErasureReport] = []
    touched: set[tuple[str, str]] = set()
    for request_id, key_column, tokens in pending:
        removed: dict[str, int] = {}
        left = 0
        with conn.transaction():
            for schema, table in tables:
                target = sql.Identifier(schema, table)
                key = sql.Identifier(key_column)
                n = conn.execute(
                    sql.SQL("DELETE FROM {} WHERE {} = ANY(%s)").format(target, key), (tokens,)
                ).rowcount
                removed[f"{schema}.{table}"] = max(n, 0)
                if n:
                    touched.add((schema, table))
                still = conn.execute(
                    sql.SQL("SELECT count(*) FROM {} WHERE {} = ANY(%s)").format(target, key),
                    (tokens,),
                ).fetchone()
                left += int(still[0]) if still else 0
            require_none_left(request_id, left)
            suppressed = keep_k(conn, policy) if keep_k and removed.get(published, 0) else 0
            if suppressed:
                touched.add(published_at)
            mark_applied(conn, request_id, removed)
        report = ErasureReport(int(request_id), policy.dataset, removed, left, suppressed)
        audit_applied(conn, report, suppressed)
        reports.append(report)
    if any(r.removed.get(published, 0) for r in reports):
        forget_published_histogram(conn, policy.dataset)
    # The deleted rows stay in the tables' files as dead tuples until a vacuum; a full one
    # rewrites the files without them (WAL and backups are beyond it, as for destroyed keys).
    for schema, table in sorted(touched):
        conn.execute(sql.SQL("VACUUM (FULL) {}").format(sql.Identifier(schema, table)))
    log.info("applied %d erasure request(s) for %s", len(reports), policy.dataset)
    return reports


def require_none_left(request_id: int, left: int) -> None:
    """``ErasureError`` when the second count still finds rows of the subject."""
    if left:
        raise ErasureError(
            f"erasure request {request_id}: {left} row(s) still found after the delete"
        )


def mark_applied(conn: psycopg.Connection, request_id: int, removed: dict[str, int]) -> None:
    """Record on the request when, by whom and how many rows per table it removed."""
    conn.execute(
        "UPDATE governance.erasure_requests SET applied_at = now(),"
        " applied_by = session_user, removed = %s::jsonb WHERE id = %s",
        (Jsonb(removed), request_id),
    )


def audit_applied(
    conn: psycopg.Connection, report: ErasureReport, suppressed: int | dict[str, int]
) -> None:
    """The audit entry of an applied request: counts only (rows removed per table, rows left,
    rows suppressed to keep k, in all or per table)."""
    record(
        conn,
        "erasure.apply",
        target=report.dataset,
        count=report.total,
        details={
            "request": report.request,
            "removed": report.removed,
            "left": report.left,
            "suppressed_below_k": suppressed,
        },
    )


def forget_published_histogram(conn: psycopg.Connection, dataset: str) -> None:
    """Drop the class histogram an incremental dataset keeps of its published rows (ADR
    0017): it counts rows that are gone now. Appending runs then measure k / l / t on the
    published table itself until a full run keeps a new one."""
    if table_exists(conn, "staging", published_sketches_name(dataset)):
        conn.execute(
            sql.SQL("DELETE FROM {} WHERE part = {}").format(
                published_sketches(dataset), sql.Literal(HISTOGRAM_PART)
            )
        )
