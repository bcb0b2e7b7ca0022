"""Residual-PII rescan: the detection engine reads the candidate's free-text and passed-through
text columns again and counts what it still finds; the policy sets the tolerance.

The rows scanned are a sample drawn in PostgreSQL (``validation.rescan_rows``; 0 scans every
row), canary rows excluded (the canary check owns them). Findings are counted per column
and entity type; no text, span or value leaves this module. Kept (non-personal) columns are
scanned for the precise, pattern-validated entities only (``PROSE_ONLY`` are left out).
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

import psycopg
from psycopg import sql

from veilflow.validate.context import GateContext
from veilflow.validate.report import CheckResult

log = logging.getLogger(__name__)

#: Entity types found in each text of a batch, among the entity types asked for.
TextScanner = Callable[[Sequence[str], frozenset[str]], list[list[str]]]
#: Actions whose text output may still hold personal data: prose scrubbed span by span,
#: and values passed through because the policy calls them non-personal.
RESCANNED_ACTIONS = frozenset({"scrub_text", "keep"})
_TEXT_TYPES = ("text", "character", "varchar", "citext")
#: Found by statistical models and gazetteers: in short categorical values kept on purpose
#: (a city, a diagnosis) they are mostly false alarms, so they are looked for in prose only.
PROSE_ONLY = frozenset({"PERSON", "LOCATION", "DATE_TIME", "ZIP_CODE"})


def default_scanner(ctx: GateContext) -> TextScanner:
    """The detection engine configured by the policy's ``detection:`` section."""
    from veilflow.detect.scanner import scanner_for

    scanner = scanner_for(ctx.policy.detection)

    def scan(texts: Sequence[str], entities: frozenset[str]) -> list[list[str]]:
        found = scanner.scan(list(texts), entities=entities)
        return [[s.entity for s in spans] for spans in found.spans]

    return scan


def rescan_columns(ctx: GateContext) -> list[str]:
    """Output text columns to rescan: the policy's list, else scrubbed and kept text."""
    chosen = ctx.policy.validation.rescan_columns
    if chosen is not None:
        return [c.name for c in ctx.columns if c.name in chosen]
    return [c.name for c in ctx.columns
            if c.action in RESCANNED_ACTIONS and c.output_type.startswith(_TEXT_TYPES)]


def sample_texts(conn: psycopg.Connection[Any], ctx: GateContext, columns: list[str],
                 rows: int) -> tuple[list[tuple[Any, ...]], int]:
    """Up to ``rows`` real candidate rows of ``columns`` (all when ``rows`` is 0), and the
    number of real rows in the candidate."""
    cand = ctx.tables.candidate
    canary = sql.Identifier("_vf_canary")
    total_row = conn.execute(sql.SQL("SELECT count(*) FROM {} WHERE NOT {}").format(
        cand, canary)).fetchone()
    total = int(total_row[0]) if total_row else 0
    cols = sql.SQL(", ").join(sql.Identifier(c) for c in columns)
    if rows <= 0 or total <= rows:
        q = sql.SQL("SELECT {} FROM {} WHERE NOT {}").format(cols, cand, canary)
    else:
        # Bernoulli sampling reads every page but keeps ~rows rows, spread over the table.
        pct = min(100.0, 100.0 * rows * 1.2 / total)
        q = sql.SQL("SELECT {} FROM {} TABLESAMPLE BERNOULLI ({}) REPEATABLE (7)"
                    " WHERE NOT {} LIMIT {}").format(cols, cand, sql.Literal(pct), canary,
                                                     sql.Literal(rows))
    return conn.execute(q).fetchall(), total


def residual_pii(conn: psycopg.Connection[Any], ctx: GateContext,
                 scanner: TextScanner | None = None) -> CheckResult:
    """Count PII findings left in the candidate's rescanned columns; pass when the total is
    at most ``validation.residual_pii_max``."""
    t = time.perf_counter()
    tolerance = ctx.policy.validation.residual_pii_max
    columns = rescan_columns(ctx)
    if not columns:
        return CheckResult("residual_pii", True, observed=0, threshold=tolerance,
                           details={"columns": []}, seconds=time.perf_counter() - t)
    sample_rows = ctx.policy.validation.rescan_rows
    rows, total = sample_texts(conn, ctx, columns, sample_rows)
    scan = scanner if scanner is not None else default_scanner(ctx)
    per_column: dict[str, dict[str, int]] = {}
    findings = 0
    batch = 512
    wanted = frozenset(ctx.policy.validation.rescan_entities)
    actions = {c.name: c.action for c in ctx.columns}
    for j, name in enumerate(columns):
        entities = wanted if actions.get(name) == "scrub_text" else wanted - PROSE_ONLY
        if not entities:
            continue
        texts = [r[j] for r in rows if r[j] is not None and str(r[j]).strip()]
        counts: Counter[str] = Counter()
        for i in range(0, len(texts), batch):
            for found in scan([str(x) for x in texts[i:i + batch]], entities):
                counts.update(e for e in found if e in entities)
        if counts:
            per_column[name] = dict(sorted(counts.items()))
            findings += sum(counts.values())
    details: dict[str, Any] = {"columns": columns, "rows_scanned": len(rows),
                               "rows_total": total}
    if per_column:
        details["findings"] = per_column
    return CheckResult("residual_pii", findings <= tolerance, observed=findings,
                       threshold=tolerance, details=details, seconds=time.perf_counter() - t)
