"""The gate's global checks from the chunks' summaries and sketches (ADR 0016).

The transform tasks decided everything that can be decided within a chunk; here the gate
reads every chunk's :class:`ChunkSummary` and hash sketches back, refuses the run when one
is missing or malformed, and merges them: sums of counts, token uniqueness and
joinability from the (original, token) hash pairs of all chunks, the key's uniqueness from
its output hashes (a duplicate confirmed on the text in PostgreSQL), k / l / t from the
merged class histograms.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import psycopg
from psycopg import sql

from veilflow.validate import sketch
from veilflow.validate.checks import _shape_map, rederived_result, token_results, value_determined
from veilflow.validate.chunk_gate import PAIRS, RISK, UNIQUE, risk_setup, sketch_columns
from veilflow.validate.context import GateContext
from veilflow.validate.gx_suite import PER_ROW, ROWS_COLUMN, build_expectations, spec_key
from veilflow.validate.report import CheckResult
from veilflow.validate.rescan import rescan_columns, residual_result
from veilflow.validate.risk_metrics import Distance, RiskMetrics, metrics_from_histogram
from veilflow.validate.summary import ChunkSummary, MalformedSummary, parse_summary
from veilflow.zones.run_tables import CANARY
from veilflow.zones.runs import chunk_summaries


@dataclass(frozen=True)
class ChunkSpan:
    index: int
    lo: int
    hi: int


@dataclass
class Summaries:
    """Every chunk's summary and sketches, checked against what the run expects."""

    chunks: list[ChunkSummary]
    #: sketch name -> one list of 64-bit columns per chunk, in chunk order.
    sketches: dict[str, list[list[np.ndarray]]] = field(default_factory=dict)
    #: The same of the published version a run appends to (ADR 0017): the pairs and key
    #: hashes of the runs that published it, and its class histogram.
    published: dict[str, list[list[np.ndarray]]] = field(default_factory=dict)

    def with_published(self, name: str) -> list[list[np.ndarray]]:
        """A sketch's parts: the run's chunks', then the published version's."""
        return self.sketches.get(name, []) + self.published.get(name, [])

    def total(self, attr: str) -> int:
        return sum(int(getattr(c, attr)) for c in self.chunks)


def expected_keys(ctx: GateContext) -> tuple[set[str], set[str], set[str]]:
    """(row checks, expectations, sketches) every chunk's summary must hold."""
    rows: set[str] = set()
    for col in ctx.columns:
        rows.add(f"null_parity|{col.name}")
        spec = ctx.policy.columns.get(col.name)
        if spec is not None and _shape_map(col, spec.params) is not None:
            rows.add(f"format_preserved|{col.name}")
            if col.hides_raw:
                rows.add(f"no_raw_value_survives|{col.name}")
    exps = {
        spec_key(s)
        for s in build_expectations(ctx)
        if s.gx_type in PER_ROW and s.column is not None
    }
    sketches = {
        (UNIQUE if c.name == ctx.policy.source.key else PAIRS) + c.name
        for c in value_determined(ctx)
    }
    setup = risk_setup(ctx)
    if setup is not None and not (setup[1] is not None and setup[2] == "ordered"):
        sketches.add(RISK)
    return rows, exps, sketches


def load_summaries(
    conn: psycopg.Connection[Any],
    ctx: GateContext,
    spans: list[ChunkSpan],
    published: dict[str, list[bytes]] | None = None,
) -> Summaries:
    """Every chunk's summary and sketches; ``MalformedSummary`` naming each chunk whose
    summary or sketches are missing or do not hold what this run's checks need.
    ``published``: the sketches of the version the run appends to, merged with the run's
    (a malformed one fails the gate too)."""
    stored = chunk_summaries(conn, ctx.tables.run_id)
    blobs: dict[tuple[int, str], bytes] = {
        (int(c), str(n)): bytes(d)
        for c, n, d in conn.execute(
            sql.SQL("SELECT chunk, name, data FROM {} WHERE chunk >= 0").format(
                ctx.tables.sketches
            ),
            binary=True,  # bytea as it is, not hex text twice its size
        ).fetchall()
    }
    want_rows, want_exps, want_sketches = expected_keys(ctx)
    with_sensitive = (risk_setup(ctx) or ([], None, ""))[1] is not None
    problems: list[str] = []
    chunks: list[ChunkSummary] = []
    merged: dict[str, list[list[np.ndarray]]] = {name: [] for name in want_sketches}
    for span in spans:
        if span.index not in stored:
            problems.append(f"chunk {span.index} has no gate summary")
            continue
        rows, data = stored[span.index]
        try:
            summary = parse_summary(data, span.index, span.lo, span.hi, rows)
            lacking = sorted(
                (want_rows - set(summary.row_checks))
                | (want_exps - set(summary.expectations))
                | (want_sketches - set(summary.sketches))
            )
            if lacking:
                raise MalformedSummary(
                    f"chunk {span.index}: the gate summary lacks {len(lacking)} check(s), "
                    f"first {lacking[0]}"
                )
            for name in sorted(want_sketches):
                blob = blobs.get((span.index, name))
                if blob is None:
                    raise MalformedSummary(f"chunk {span.index}: sketch {name} is missing")
                try:
                    cols = sketch.from_bytes(blob, sketch_columns(name, with_sensitive))
                except ValueError:
                    raise MalformedSummary(
                        f"chunk {span.index}: sketch {name} is malformed"
                    ) from None
                if cols[0].size != summary.sketches[name]:
                    raise MalformedSummary(
                        f"chunk {span.index}: sketch {name} has another size than its summary says"
                    )
                merged[name].append(cols)
        except MalformedSummary as exc:
            problems.append(str(exc))
            continue
        chunks.append(summary)
    extra = sorted(set(stored) - {s.index for s in spans})
    if extra:
        problems.append(f"{len(extra)} chunk(s) beyond the run's key ranges, first {extra[0]}")
    kept: dict[str, list[list[np.ndarray]]] = {}
    for name, blobs_of_name in (published or {}).items():
        if name not in want_sketches:
            continue
        for blob in blobs_of_name:
            try:
                kept.setdefault(name, []).append(
                    sketch.from_bytes(blob, sketch_columns(name, with_sensitive))
                )
            except ValueError:
                problems.append(f"the published version's sketch {name} is malformed")
    if problems:
        raise MalformedSummary("; ".join(problems))
    return Summaries(chunks, merged, kept)


def summary_frame(ctx: GateContext, s: Summaries, unique: dict[str, np.ndarray]) -> pd.DataFrame:
    """One row per chunk: its real rows and, per expectation the chunks decided, the rows
    that broke it (what GX validates, ``gx_suite.run_summary_expectations``)."""
    data: dict[str, Any] = {"chunk": [c.chunk for c in s.chunks]}
    data[ROWS_COLUMN] = [c.rows for c in s.chunks]
    for key in sorted({k for c in s.chunks for k in c.expectations}):
        data[key] = [c.expectations[key].unexpected for c in s.chunks]
    for column, per_chunk in unique.items():
        data[f"unique|{column}"] = per_chunk
    return pd.DataFrame(data)


# --------------------------------------------------------------------------- checks


def row_check_results(ctx: GateContext, s: Summaries, seconds: float) -> list[CheckResult]:
    """Null parity, format preservation and same-row survival, summed over the chunks."""
    totals: Counter[str] = Counter()
    for c in s.chunks:
        totals.update(c.row_checks)
    want, _, _ = expected_keys(ctx)
    results = []
    order = {c.name: i for i, c in enumerate(ctx.columns)}
    for key in sorted(want, key=lambda k: (order.get(k.split("|", 1)[1], 0), k)):
        name, column = key.split("|", 1)
        n = int(totals[key])
        results.append(
            CheckResult(
                name,
                n == 0,
                observed=n,
                threshold=0,
                column=column,
                details={"compared": "same row"} if name == "no_raw_value_survives" else {},
                seconds=seconds,
            )
        )
    return results


def token_pair_results(ctx: GateContext, s: Summaries) -> list[CheckResult]:
    """``token_unique`` / ``token_joinable`` of every deterministic column but the key,
    from the (original, output) hash pairs of all chunks. As in SQL before, values are
    compared as 64-bit hashes: a false alarm needs two of a column's distinct values to
    share a hash (about n²/2⁶⁵: 3·10⁻⁸ for a million)."""
    results = []
    for col in value_determined(ctx):
        name = PAIRS + col.name
        if name not in s.sketches:
            continue
        t = time.perf_counter()
        parts = s.sketches[name]
        a = np.concatenate([p[0] for p in parts]) if parts else np.zeros(0, np.uint64)
        b = np.concatenate([p[1] for p in parts]) if parts else np.zeros(0, np.uint64)
        kept = s.published.get(name)
        if kept:
            # The published pairs passed the gate: every inconsistency of the union has a
            # pair of this run in it, so only the published pairs that share an original
            # or an output with this run's pairs join them (ADR 0017).
            old_a, old_b = sketch.touching(a, b, [p[0] for p in kept], [p[1] for p in kept])
            a, b = sketch.distinct_pairs(np.r_[a, old_a], np.r_[b, old_b])
        counts = sketch.pair_counts(a, b)
        results.extend(
            token_results(
                col.name,
                counts.shared_outputs,
                counts.split_originals,
                time.perf_counter() - t,
                compared="hash sketches of every chunk",
            )
        )
    return results


def per_chunk_counts(flags: np.ndarray, sizes: list[int]) -> np.ndarray:
    """How many of ``flags`` hold in each chunk, the chunks' flags laid end to end with
    ``sizes`` (a chunk may be empty: a key range with no rows)."""
    owner = np.repeat(np.arange(len(sizes)), sizes)
    return np.bincount(owner, weights=flags.astype(np.int64), minlength=len(sizes)).astype(np.int64)


def key_duplicates(
    conn: psycopg.Connection[Any], ctx: GateContext, s: Summaries
) -> dict[str, np.ndarray]:
    """Per deterministic key column, the real rows of each chunk whose output value occurs
    more than once in the run. Hashes find the candidates; a duplicate counts only once the
    candidate's text confirms it (a hash collision never fails a run)."""
    out: dict[str, np.ndarray] = {}
    for name, parts in s.sketches.items():
        if not name.startswith(UNIQUE):
            continue
        column = name.removeprefix(UNIQUE)
        sizes = [p[0].size for p in parts]
        h = np.concatenate([p[0] for p in parts]) if parts else np.zeros(0, np.uint64)
        # A run's key token that is one of the published rows' is a duplicate too.
        dup = sketch.duplicated(h) | sketch.found_in(h, [p[0] for p in s.published.get(name, [])])
        per_chunk = per_chunk_counts(dup, sizes)
        if per_chunk.sum():
            row = conn.execute(_duplicates_query(ctx, column)).fetchone()
            exact = int(row[0]) if row else 0
            if exact != int(per_chunk.sum()):  # a collision: the text decides
                per_chunk = np.zeros(len(parts), np.int64)
                if len(per_chunk):
                    per_chunk[0] = exact
        out[column] = per_chunk
    return out


def _duplicates_query(ctx: GateContext, column: str) -> sql.Composed:
    """Real rows of the candidate whose ``column`` occurs more than once, in the candidate
    or (appending) in the candidate and the published table together."""
    c = sql.Identifier(column)
    if ctx.appends_to is None:
        return sql.SQL(
            "SELECT coalesce(sum(n), 0) FROM (SELECT count(*) AS n FROM {cand}"
            " WHERE NOT {canary} AND {c} IS NOT NULL GROUP BY {c}"
            " HAVING count(*) > 1) d"
        ).format(cand=ctx.tables.candidate, canary=sql.Identifier(CANARY), c=c)
    schema, table = ctx.appends_to.split(".")
    return sql.SQL(
        "SELECT coalesce(sum(n), 0) FROM (SELECT count(*) FILTER (WHERE new) AS n FROM"
        " (SELECT {c} AS v, true AS new FROM {cand} WHERE NOT {canary} AND {c} IS NOT NULL"
        "  UNION ALL SELECT {c}, false FROM {pub} WHERE {c} IS NOT NULL) u"
        " GROUP BY v HAVING count(*) > 1) d"
    ).format(
        cand=ctx.tables.candidate,
        canary=sql.Identifier(CANARY),
        c=c,
        pub=sql.Identifier(schema, table),
    )


def rederived_results(ctx: GateContext, s: Summaries) -> list[CheckResult]:
    """``token_rederived`` per deterministic column, summed over the chunks' samples."""
    results = []
    for col in value_determined(ctx):
        tallies = [c.rederived[col.name] for c in s.chunks if col.name in c.rederived]
        if not tallies:
            continue
        differ = sum(t.unexpected for t in tallies)
        results.append(rederived_result(col.name, differ, sum(t.checked for t in tallies)))
    return results


def canary_result(s: Summaries, expected: int) -> CheckResult:
    planted = sum(c.canary.planted for c in s.chunks if c.canary)
    in_candidate = sum(c.canary.in_candidate for c in s.chunks if c.canary)
    leaks: Counter[str] = Counter()
    for c in s.chunks:
        if c.canary:
            leaks.update(c.canary.leaks)
    observed = sum(leaks.values())
    missing = max(0, expected - in_candidate)
    details: dict[str, Any] = {"planted": planted, "in_candidate": in_candidate}
    if leaks:
        details["leaks"] = dict(sorted(leaks.items()))
    if missing:
        details["missing_canaries"] = missing
    return CheckResult(
        "canaries",
        observed == 0 and missing == 0 and planted == expected,
        observed=observed,
        threshold=0,
        details=details,
    )


def rescan_result(ctx: GateContext, s: Summaries, suppressed: int) -> CheckResult:
    tolerance = ctx.policy.validation.residual_pii_max
    columns = rescan_columns(ctx)
    if not columns:
        return CheckResult(
            "residual_pii", True, observed=0, threshold=tolerance, details={"columns": []}
        )
    per_column: dict[str, Counter[str]] = {}
    replaced: Counter[str] = Counter()
    scanned = 0
    for c in s.chunks:
        if c.rescan is None:
            continue
        scanned += c.rescan.rows_scanned
        replaced.update(c.rescan.replacements)
        for col, counts in c.rescan.findings.items():
            per_column.setdefault(col, Counter()).update(counts)
    return residual_result(
        columns,
        {c: dict(sorted(v.items())) for c, v in sorted(per_column.items())},
        scanned,
        s.total("rows") - suppressed,
        replaced,
        tolerance,
    )


def words_to_search(s: Summaries) -> bool:
    """Whether any text output holds a word that could be a raw value: then "no raw value
    in text" searches in PostgreSQL, else it is proven with no search."""
    token_raw = sum(c.text.token_shaped_raw for c in s.chunks if c.text)
    words = sum(c.text.words for c in s.chunks if c.text)
    token_words = sum(c.text.token_words for c in s.chunks if c.text)
    return words > 0 or (token_raw > 0 and token_words > 0)


def format_proofs(s: Summaries) -> dict[str, tuple[int, int]]:
    """Per column, (raw values with the output format, canary outputs without it)."""
    out: dict[str, tuple[int, int]] = {}
    for c in s.chunks:
        for col, p in c.formats.items():
            a, b = out.get(col, (0, 0))
            out[col] = (a + p.raw_with_format, b + p.canary_outputs_without)
    return out


# --------------------------------------------------------------------------- risk


@dataclass(frozen=True)
class Histogram:
    """The run's equivalence classes: class id, sensitive value id (or None), count."""

    cls: np.ndarray
    val: np.ndarray | None
    cnt: np.ndarray


def class_counts(ctx: GateContext, s: Summaries) -> pd.DataFrame | None:
    """The merged class histogram as hashes: class (``c0``, ``c1``), sensitive value
    (``v0``, ``v1``, when there is one) and rows ``n``; the run's chunks and (appending)
    the published version's classes."""
    if RISK not in s.sketches:
        return None
    if ctx.appends_to is not None and RISK not in s.published:
        # The published version keeps no histogram: an erasure removed rows it counted
        # (``vault.erasure.forget_published_histogram``). k / l / t are measured on the
        # tables, and none is kept until a full run.
        return None
    parts = s.with_published(RISK)
    setup = risk_setup(ctx)
    assert setup is not None
    with_sensitive = setup[1] is not None
    n_cols = sketch_columns(RISK, with_sensitive)
    cols = [
        np.concatenate([p[i] for p in parts]) if parts else np.zeros(0, np.uint64)
        for i in range(n_cols)
    ]
    names = ["c0", "c1", "v0", "v1"][: n_cols - 1]
    frame = pd.DataFrame({n: c for n, c in zip(names, cols[:-1], strict=True)})
    frame["n"] = cols[-1].astype(np.int64)
    return frame.groupby(names, sort=False)["n"].sum().reset_index()


def published_histogram(grouped: pd.DataFrame, k: int) -> bytes:
    """The histogram of the rows a run publishes, as a sketch: its classes of ``k`` rows
    or more (suppression deletes the others' rows; without it the gate refuses them)."""
    sizes = grouped.groupby(["c0", "c1"], sort=False)["n"].transform("sum")
    kept = grouped[sizes.to_numpy() >= k]
    return sketch.to_bytes(*[kept[c].to_numpy(np.uint64) for c in kept.columns])


def merged_histogram(ctx: GateContext, s: Summaries) -> Histogram | None:
    grouped = class_counts(ctx, s)
    if grouped is None:
        return None
    with_sensitive = "v0" in grouped.columns
    cls = grouped.groupby(["c0", "c1"], sort=False).ngroup().to_numpy(np.int64)
    val = (
        grouped.groupby(["v0", "v1"], sort=False).ngroup().to_numpy(np.int64)
        if with_sensitive
        else None
    )
    return Histogram(cls, val, grouped["n"].to_numpy(np.int64))


def histogram_metrics(ctx: GateContext, h: Histogram) -> RiskMetrics:
    setup = risk_setup(ctx)
    assert setup is not None
    qi, sensitive, distance = setup
    dist: Distance = "ordered" if distance == "ordered" else "equal"
    return metrics_from_histogram(
        h.cls,
        h.val,
        h.cnt,
        quasi_identifiers=tuple(qi),
        sensitive=sensitive,
        distance=dist if sensitive else None,
    )


def without_small_classes(h: Histogram, k: int) -> Histogram:
    """The histogram once the rows of classes smaller than ``k`` are suppressed."""
    if h.cls.size == 0:
        return h
    sizes = np.bincount(h.cls, weights=h.cnt)
    keep = sizes[h.cls] >= k
    cls = np.unique(h.cls[keep], return_inverse=True)[1].astype(np.int64)
    val = None if h.val is None else np.unique(h.val[keep], return_inverse=True)[1].astype(np.int64)
    return Histogram(cls, val, h.cnt[keep])
