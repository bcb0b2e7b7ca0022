"""Residual-PII rescan: the detection engine reads the candidate's free-text and passed-through
text columns again and counts the personal data still there; the policy sets the tolerance.

A finding counts when it is personal data that survived: its text occurs, as whole words,
in the same row's source value of the same column, or it is the whole source value of
another column of the row (an e-mail address copied into a note). Replacements are shaped
like personal data on purpose (a surrogate name, a token with the e-mail's domain, a
format-preserving phone number) and the engine finds them too; they are not in the source,
so they do not count. Against other columns only whole values count: a surrogate first name
may well be a word of the row's city, and that is chance, not a leak. Whole words, because
a replacement may hold a source word inside a longer one (``Lee`` in ``Ashlee``).
Surrogates never repeat a word of their own original (see
``veilflow.transform.operators.surrogate``). For a kept column the output is the source, so
every finding counts.

The rows scanned are a sample drawn in PostgreSQL (``validation.rescan_rows``; 0 scans every
row), canary rows excluded (the canary check owns them). Findings are counted per column
and entity type; no text, span or value leaves this module. Kept (non-personal) columns are
scanned for the precise, pattern-validated entities only (``PROSE_ONLY`` are left out).
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import psycopg
from psycopg import sql

from veilflow.policy.model import Policy
from veilflow.validate.context import GateContext
from veilflow.validate.privacy import column_types
from veilflow.validate.report import CheckResult
from veilflow.validate.whole_words import whole_words

log = logging.getLogger(__name__)

#: Per text of a batch, the findings among the entity types asked for: (entity, found text).
TextScanner = Callable[[Sequence[str], frozenset[str]], list[list[tuple[str, str]]]]
#: Actions whose text output may still hold personal data: prose scrubbed span by span,
#: and values passed through because the policy calls them non-personal.
RESCANNED_ACTIONS = frozenset({"scrub_text", "keep"})
_TEXT_TYPES = ("text", "character", "varchar", "citext")
#: Found by statistical models and gazetteers: in short categorical values kept on purpose
#: (a city, a diagnosis) they are mostly false alarms, so they are looked for in prose only.
PROSE_ONLY = frozenset({"PERSON", "LOCATION", "DATE_TIME", "ZIP_CODE"})


def default_scanner(ctx: GateContext) -> TextScanner:
    """The detection engine configured by the policy's ``detection:`` section. Its spaCy
    model is loaded only when an entity only NER finds is asked for (prose columns)."""
    from veilflow.detect.scanner import scanner_for

    def scan(texts: Sequence[str], entities: frozenset[str]) -> list[list[tuple[str, str]]]:
        scanner = scanner_for(ctx.policy.detection, use_ner=bool(entities & PROSE_ONLY))
        found = scanner.scan(list(texts), entities=entities)
        return [
            [(s.entity, text[s.start : s.end]) for s in spans]
            for text, spans in zip(texts, found.spans, strict=True)
        ]

    return scan


def warm_scanner(policy: Policy) -> None:
    """Build the pattern scanner the per-chunk rescan of kept columns uses (a second or so,
    mostly its gazetteers), so that chunk workers forked afterwards inherit it instead of
    each building its own. Prose columns need the NER scanner, which their scrub_text
    operator builds in the worker anyway."""
    chosen = policy.validation.rescan_columns
    kept = [n for n, s in policy.columns.items() if s.action == "keep"]
    if not kept or (chosen is not None and not set(chosen) & set(kept)):
        return
    wanted = frozenset(policy.validation.rescan_entities) - PROSE_ONLY
    if wanted:
        from veilflow.detect.scanner import scanner_for

        scanner_for(policy.detection, use_ner=False)


def rescan_columns(ctx: GateContext) -> list[str]:
    """Output text columns to rescan: the policy's list, else scrubbed and kept text."""
    chosen = ctx.policy.validation.rescan_columns
    if chosen is not None:
        return [c.name for c in ctx.columns if c.name in chosen]
    return [
        c.name
        for c in ctx.columns
        if c.action in RESCANNED_ACTIONS and c.output_type.startswith(_TEXT_TYPES)
    ]


def sample_rows(
    conn: psycopg.Connection[Any], ctx: GateContext, columns: list[str], rows: int
) -> tuple[list[tuple[Any, ...]], int]:
    """Up to ``rows`` real rows (all when ``rows`` is 0): the candidate's values of
    ``columns``, the snapshot's values of the same columns, then every source value of the
    snapshot row as one text array (matched on the row number); and the candidate's real
    row count."""
    cand, snap = ctx.tables.candidate, ctx.tables.snapshot
    canary, row = sql.Identifier("_vf_canary"), sql.Identifier("_vf_row")
    total_row = conn.execute(
        sql.SQL("SELECT count(*) FROM {} WHERE NOT {}").format(cand, canary)
    ).fetchone()
    total = int(total_row[0]) if total_row else 0
    source = [
        c
        for c in column_types(conn, f'staging."{ctx.tables.snapshot_name}"')
        if not c.startswith("_vf_")
    ]
    values = sql.SQL(", ").join(
        [
            *(
                sql.SQL("{}.{}::text").format(sql.Identifier(side), sql.Identifier(c))
                for side in ("o", "s")
                for c in columns
            ),
            sql.SQL("ARRAY[{}]::text[]").format(
                sql.SQL(", ").join(sql.SQL("s.{}::text").format(sql.Identifier(c)) for c in source)
            ),
        ]
    )
    sample: sql.Composable = sql.SQL("")
    limit: sql.Composable = sql.SQL("")
    if 0 < rows < total:
        # Bernoulli sampling spreads the rows over the whole table.
        pct = min(100.0, 100.0 * rows * 1.2 / total)
        sample = sql.SQL("TABLESAMPLE BERNOULLI ({}) REPEATABLE (7)").format(sql.Literal(pct))
        limit = sql.SQL("LIMIT {}").format(sql.Literal(rows))
    q = sql.SQL(
        "SELECT {values} FROM {cand} o {sample} JOIN {snap} s USING ({row})"
        " WHERE NOT o.{canary} {limit}"
    ).format(
        values=values, cand=cand, sample=sample, snap=snap, row=row, canary=canary, limit=limit
    )
    with conn.transaction():
        # A few thousand sampled rows find their snapshot rows through its index.
        conn.execute("SET LOCAL enable_nestloop = on")
        return conn.execute(q).fetchall(), total


def occurs_as_words(text: str, source: str) -> bool:
    """Whether ``text`` occurs in ``source`` with no letter or digit joined to either end."""
    if not text or text not in source:
        return False
    return whole_words([text]).search(source) is not None


def _folded(text: str) -> str:
    return " ".join(text.casefold().split())


def survived(text: str, own_source: str, row_values: frozenset[str]) -> bool:
    """Whether a finding is source data: whole words of the column's own source value, or
    the whole value of a column of the row (``row_values`` holds them ``_folded``)."""
    return occurs_as_words(text, own_source) or (bool(text) and _folded(text) in row_values)


def count_findings(
    ctx: GateContext, columns: list[str], rows: Sequence[Sequence[Any]], scan: TextScanner
) -> tuple[dict[str, dict[str, int]], Counter[str]]:
    """Findings that survived, per column and entity, and replacements seen per entity, in
    ``rows`` as :func:`sample_rows` returns them: the output values of ``columns``, the
    source values of the same columns, then every source value of the row."""
    wanted = frozenset(ctx.policy.validation.rescan_entities)
    actions = {c.name: c.action for c in ctx.columns}
    per_column: dict[str, dict[str, int]] = {}
    replaced: Counter[str] = Counter()
    batch = 512
    for j, name in enumerate(columns):
        entities = wanted if actions.get(name) == "scrub_text" else wanted - PROSE_ONLY
        if not entities:
            continue
        at = len(columns) + j
        pairs = [
            (str(r[j]), str(r[at] or ""), r[-1])
            for r in rows
            if r[j] is not None and str(r[j]).strip()
        ]
        # Each distinct text is scanned once (kept categorical columns repeat a few values
        # over every row); whether a finding survived is still decided row by row.
        distinct = list(dict.fromkeys(p[0] for p in pairs))
        found_in: dict[str, list[tuple[str, str]]] = {}
        for i in range(0, len(distinct), batch):
            part = distinct[i : i + batch]
            found_in.update(zip(part, scan(part, entities), strict=True))
        counts: Counter[str] = Counter()
        for value, own, row_values in pairs:
            findings_here = [(e, t) for e, t in found_in[value] if e in entities]
            if not findings_here:
                continue
            whole = frozenset(_folded(v) for v in row_values if v)
            for entity, text in findings_here:
                if survived(text, own, whole):
                    counts[entity] += 1
                else:
                    replaced[entity] += 1
        if counts:
            per_column[name] = dict(sorted(counts.items()))
    return per_column, replaced


def residual_pii(
    conn: psycopg.Connection[Any], ctx: GateContext, scanner: TextScanner | None = None
) -> CheckResult:
    """Count personal data that survived into the candidate's rescanned columns; pass when
    the total is at most ``validation.residual_pii_max``."""
    t = time.perf_counter()
    tolerance = ctx.policy.validation.residual_pii_max
    columns = rescan_columns(ctx)
    if not columns:
        return CheckResult(
            "residual_pii",
            True,
            observed=0,
            threshold=tolerance,
            details={"columns": []},
            seconds=time.perf_counter() - t,
        )
    rows, total = sample_rows(conn, ctx, columns, ctx.policy.validation.rescan_rows)
    scan = scanner if scanner is not None else default_scanner(ctx)
    per_column, replaced = count_findings(ctx, columns, rows, scan)
    return residual_result(
        columns, per_column, len(rows), total, replaced, tolerance, time.perf_counter() - t
    )


def residual_result(
    columns: list[str],
    per_column: Mapping[str, Mapping[str, int]],
    rows_scanned: int,
    rows_total: int,
    replaced: Mapping[str, int],
    tolerance: int,
    seconds: float = 0.0,
) -> CheckResult:
    """``residual_pii``: the findings per column and entity in the rows scanned (counts,
    never a value) against the policy's tolerance."""
    findings = sum(sum(v.values()) for v in per_column.values())
    details: dict[str, Any] = {
        "columns": columns,
        "rows_scanned": rows_scanned,
        "rows_total": rows_total,
        "replacements_seen": dict(sorted(replaced.items())),
    }
    if per_column:
        details["findings"] = per_column
    return CheckResult(
        "residual_pii",
        findings <= tolerance,
        observed=findings,
        threshold=tolerance,
        details=details,
        seconds=seconds,
    )
