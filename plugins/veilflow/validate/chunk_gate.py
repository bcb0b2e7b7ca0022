"""The gate's work on one chunk, done by the transform task while the chunk's raw and
transformed frames are in memory (ADR 0016).

Everything decidable row by row or within the chunk is decided here, with Arrow and numpy:
not-null and output formats (the GX suite's per-row expectations, counted exactly as GX
counts them in PostgreSQL), null parity, format preservation and same-row survival, the
inputs of the "no raw value survives" format proof, the words that could hold raw values,
the canaries planted in the chunk and the residual-PII rescan of its share of the sample.
What needs the whole run leaves as hash sketches: (original, token) pairs of deterministic
columns, the key's output values and the equivalence-class histogram of the quasi-
identifiers. The result is a :class:`ChunkSummary` (counts only) and its sketches (hashes
only); :mod:`veilflow.validate.merge` turns the summaries of every chunk into the gate's
checks.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from veilflow.transform.base import STRING
from veilflow.validate import sketch
from veilflow.validate.canaries import NOT_HIDING, canary_leaks
from veilflow.validate.checks import (
    FALLBACK_PATTERN,
    _shape_map,
    format_checked_columns,
    value_determined,
)
from veilflow.validate.context import GateColumn, GateContext
from veilflow.validate.gx_suite import (
    PER_ROW,
    build_expectations,
    output_pattern,
    spec_key,
    token_like,
)
from veilflow.validate.privacy import is_ordered_type
from veilflow.validate.rescan import TextScanner, count_findings, default_scanner, rescan_columns
from veilflow.validate.summary import (
    CanaryTally,
    ChunkSummary,
    FormatProof,
    RescanTally,
    Tally,
    TextWords,
)

ROW = "_vf_row"
CANARY = "_vf_canary"
#: Sketch names: deterministic columns' (original, output) hash pairs, the key's output
#: hashes, the quasi-identifiers' class histogram.
PAIRS, UNIQUE, RISK = "pairs|", "unique|", "risk"
#: What surrounds a word in text that is not part of it (as the SQL check trims).
_PUNCT = ".,;:!?()[]{}<>\"'"


@dataclass(frozen=True)
class ChunkGate:
    summary: ChunkSummary
    sketches: dict[str, bytes]


def _arrow(values: pd.Series) -> pa.StringArray:
    return sketch.as_strings(values)


def _count(mask: pa.Array | pa.ChunkedArray | np.ndarray) -> int:
    if isinstance(mask, np.ndarray):
        return int(np.count_nonzero(mask))
    return int(pc.sum(pc.fill_null(mask, False).cast(pa.int64())).as_py() or 0)


def matches(values: pa.StringArray, regex: str) -> pa.BooleanArray:
    """``values ~ regex`` as PostgreSQL's advanced regular expressions read the gate's
    patterns: ``.`` matches a newline too, ``^`` and ``$`` anchor the whole text. NULL
    stays NULL."""
    result: pa.BooleanArray = pc.match_substring_regex(values, "(?s)" + regex)
    return result


def has_format(col: GateColumn, params: dict[str, Any], values: pa.StringArray) -> pa.Array | None:
    """Per value, whether it has ``col``'s output format (the in-memory form of
    ``checks._has_format``), or None when the output has no fixed format."""
    if col.action == "redact":
        return pc.equal(values, pa.scalar(str(params.get("replacement", "[REDACTED]"))))
    pattern = output_pattern(col, params)
    if pattern is None:
        return None
    if col.action == "tokenize":
        # Only a value with the token's prefix can match; the regex runs on those alone.
        prefix = pc.starts_with(values, f"{params.get('prefix', 'tok')}_v")
        if not pc.any(prefix).as_py():
            return pa.array(np.zeros(len(values), dtype=bool))
    return matches(values, pattern)


def _expectation(spec_type: str, kwargs: dict[str, Any], values: pa.StringArray) -> Tally:
    """An expectation's tally on the real rows, as GX's SQL counts it: not-null counts
    NULLs among all rows; the others count non-NULL values that fail."""
    n = len(values)
    nulls = values.null_count
    if spec_type == "ExpectColumnValuesToNotBeNull":
        return Tally(unexpected=nulls, checked=n)
    if spec_type == "ExpectColumnValuesToMatchRegex":
        ok = matches(values, str(kwargs["regex"]))
    elif spec_type == "ExpectColumnValuesToMatchLikePattern":
        ok = pc.match_like(values, str(kwargs["like_pattern"]))
    elif spec_type == "ExpectColumnValuesToBeInSet":
        ok = pc.is_in(values, value_set=pa.array([str(v) for v in kwargs["value_set"]]))
    else:  # pragma: no cover - PER_ROW names the four above
        raise ValueError(spec_type)
    return Tally(unexpected=(n - nulls) - _count(ok), checked=n)


def _translated(values: pd.Series, shape: tuple[str, str]) -> pd.Series:
    table = str.maketrans(shape[0], shape[1])
    return values.astype(object).map(lambda v: v.translate(table) if isinstance(v, str) else v)


def _row_checks(ctx: GateContext, raw: pd.DataFrame, out: pd.DataFrame) -> dict[str, int]:
    """Null parity, format preservation and same-row survival, over every row."""
    counts: dict[str, int] = {}
    for col in ctx.columns:
        r, o = raw[col.name], out[col.name]
        r_null, o_null = r.isna().to_numpy(), o.isna().to_numpy()
        counts[f"null_parity|{col.name}"] = int(np.count_nonzero(r_null != o_null))
        spec = ctx.policy.columns.get(col.name)
        shape = _shape_map(col, spec.params) if spec is not None else None
        if shape is None:
            continue
        both = ~r_null & ~o_null
        rs, os_ = _translated(r[both], shape), _translated(o[both], shape)
        fallback = np.asarray(
            matches(_arrow(o[both]), FALLBACK_PATTERN).to_numpy(zero_copy_only=False), dtype=bool
        )
        broken = (rs.to_numpy() != os_.to_numpy()) & ~fallback
        counts[f"format_preserved|{col.name}"] = int(np.count_nonzero(broken))
        if col.hides_raw:
            same = r[both].to_numpy(dtype=object) == o[both].to_numpy(dtype=object)
            counts[f"no_raw_value_survives|{col.name}"] = int(np.count_nonzero(same))
    return counts


def _format_proofs(
    ctx: GateContext, raw: pd.DataFrame, out: pd.DataFrame, canary: np.ndarray
) -> dict[str, FormatProof]:
    proofs: dict[str, FormatProof] = {}
    for col, params in format_checked_columns(ctx):
        raw_ok = has_format(col, params, _arrow(raw[col.name]))
        if raw_ok is None:
            continue
        outputs = _arrow(out[col.name][canary])
        out_ok = has_format(col, params, outputs)
        assert out_ok is not None
        lacking = (len(outputs) - outputs.null_count) - _count(out_ok)
        proofs[col.name] = FormatProof(
            raw_with_format=_count(raw_ok), canary_outputs_without=lacking
        )
    return proofs


def _text_words(ctx: GateContext, raw: pd.DataFrame, out: pd.DataFrame) -> TextWords | None:
    """Counts that tell the gate whether "no raw value in text" needs its SQL search."""
    text_columns = rescan_columns(ctx)
    hiding = [c for c in ctx.columns if c.hides_raw and c.name not in text_columns]
    if not text_columns or not hiding:
        return None
    like = token_like()
    token_raw = sum(_count(pc.match_like(_arrow(raw[c.name]), like)) for c in hiding)
    words = 0
    token_words = 0
    for name in text_columns:
        values = _arrow(out[name])
        values = values.filter(pc.fill_null(matches(values, "[0-9@]"), False))
        if not len(values):
            continue
        split = pc.list_flatten(pc.utf8_split_whitespace(values))
        trimmed = pc.utf8_trim(split, characters=_PUNCT)
        keep = pc.and_(pc.greater_equal(pc.utf8_length(trimmed), 6), matches(trimmed, "[0-9@]"))
        distinct = pc.unique(trimmed.filter(keep))
        tokens = _count(pc.starts_with(distinct, "tok_v"))
        words += len(distinct) - tokens
        token_words += tokens
    return TextWords(token_shaped_raw=token_raw, words=words, token_words=token_words)


def _original(ctx: GateContext, col: GateColumn, values: pd.Series) -> pd.Series:
    """A deterministic column's original as its operator hashes it (``checks._token_columns``)."""
    spec = ctx.policy.columns.get(col.name)
    if spec is not None and spec.params.get("normalize") == "casefold":
        return (
            values.str.strip(" ")
            .str.replace(r"\s+", " ", regex=True)
            .str.normalize("NFKC")
            .str.lower()
        )
    return values


def _token_sketches(
    ctx: GateContext, raw: pd.DataFrame, out: pd.DataFrame, real: np.ndarray, key: bytes
) -> dict[str, tuple[np.ndarray, ...]]:
    sketches: dict[str, tuple[np.ndarray, ...]] = {}
    for col in value_determined(ctx):
        b, b_ok = sketch.hash_strings(out[col.name], key)
        if col.name == ctx.policy.source.key:
            # Source keys are distinct (extract proved it): only the outputs' uniqueness
            # is in question, among the rows that are published.
            sketches[UNIQUE + col.name] = (np.sort(b[b_ok & real]),)
            continue
        a, a_ok = sketch.hash_strings(_original(ctx, col, raw[col.name]), key)
        both = a_ok & b_ok
        sketches[PAIRS + col.name] = sketch.distinct_pairs(a[both], b[both])
    return sketches


#: Rows of the whole run whose tokens are derived again (spread over the chunks).
REDERIVE_SAMPLE = 1000


def _rederived(
    ctx: GateContext, raw: pd.DataFrame, out: pd.DataFrame, real: np.ndarray
) -> dict[str, Tally]:
    """Joinability across tables: the chunk's first real rows' raw values, put through the
    run's operator again (the key versions extract pinned), give exactly the written
    outputs; any other table tokenized under the same key scope computes the same function."""
    if ctx.recompute is None:
        return {}
    chunks = max(1, -(-ctx.rows_in // ctx.policy.chunk_rows))
    rows = np.flatnonzero(real)[: max(1, -(-REDERIVE_SAMPLE // chunks))]
    tallies: dict[str, Tally] = {}
    for col in value_determined(ctx):
        r = raw[col.name].iloc[rows]
        kept = r.notna().to_numpy()
        if not kept.any():
            continue
        again = ctx.recompute(col.name, r[kept].reset_index(drop=True).astype(STRING))
        written = out[col.name].iloc[rows][kept].reset_index(drop=True).astype(STRING)
        differ = int((again.astype(STRING).fillna("\x00") != written.fillna("\x00")).sum())
        tallies[col.name] = Tally(unexpected=differ, checked=int(kept.sum()))
    return tallies


def risk_setup(ctx: GateContext) -> tuple[list[str], str | None, str] | None:
    """(quasi-identifiers, sensitive, distance) the gate measures, or None without QIs."""
    p = ctx.policy.privacy
    present = {c.name: c for c in ctx.columns}
    qi = [q for q in p.quasi_identifiers if q in present]
    if not qi:
        return None
    sensitive = p.sensitive if p.sensitive in present else None
    distance = p.distance
    if distance == "auto":
        out_type = present[sensitive].output_type if sensitive else "text"
        distance = "ordered" if is_ordered_type(out_type or "text") else "equal"
    return qi, sensitive, distance


def mergeable_risk(ctx: GateContext) -> bool:
    """Whether k, l and t come from the chunks' class histograms: always but for an
    ordered t-closeness distance, which needs the sensitive values' order (values, which
    a summary never holds); that one is measured in PostgreSQL."""
    setup = risk_setup(ctx)
    return setup is not None and not (setup[1] is not None and setup[2] == "ordered")


def _risk_sketch(
    ctx: GateContext, out: pd.DataFrame, real: np.ndarray, key: bytes
) -> tuple[np.ndarray, ...] | None:
    setup = risk_setup(ctx)
    if setup is None or not mergeable_risk(ctx):
        return None
    qi, sensitive, _ = setup
    rows = out[real]
    lanes: list[np.ndarray] = []
    for lane in (0, 1):
        parts = []
        for q in qi:
            h, ok = sketch.hash_strings(rows[q], key, lane)
            parts.append(np.where(ok, h, sketch.null_token(key, lane)))
        lanes.append(sketch.combine(parts, key, lane))
    if sensitive is not None:
        for lane in (0, 1):
            h, ok = sketch.hash_strings(rows[sensitive], key, lane + 2)
            lanes.append(np.where(ok, h, sketch.null_token(key, lane + 2)))
    if not lanes[0].size:
        return tuple(np.zeros(0, dtype=np.uint64) for _ in range(len(lanes) + 1))
    stacked = np.ascontiguousarray(np.stack(lanes, axis=1))
    distinct, counts = np.unique(stacked, axis=0, return_counts=True)
    return (*(distinct[:, i] for i in range(distinct.shape[1])), counts.astype(np.uint64))


def _rescan(
    ctx: GateContext,
    raw: pd.DataFrame,
    out: pd.DataFrame,
    real: np.ndarray,
    scanner: TextScanner | None,
) -> RescanTally | None:
    columns = rescan_columns(ctx)
    if not columns:
        return None
    want, total = ctx.policy.validation.rescan_rows, ctx.rows_in
    rows_idx = np.flatnonzero(real)
    if 0 < want < total and rows_idx.size:
        quota = min(rows_idx.size, -(-want * rows_idx.size // total))
        rows_idx = rows_idx[np.unique(np.linspace(0, rows_idx.size - 1, quota).round().astype(int))]
    source = [c for c in raw.columns if not c.startswith("_vf_")]
    o = out.iloc[rows_idx]
    s = raw.iloc[rows_idx]
    o_vals = [o[c].astype(object).where(o[c].notna(), None).tolist() for c in columns]
    s_vals = [s[c].astype(object).where(s[c].notna(), None).tolist() for c in columns]
    src = [s[c].astype(object).where(s[c].notna(), None).tolist() for c in source]
    rows = [
        (
            *(v[i] for v in o_vals),
            *(v[i] for v in s_vals),
            [v[i] for v in src],
        )
        for i in range(len(rows_idx))
    ]
    scan = scanner if scanner is not None else default_scanner(ctx)
    findings, replaced = count_findings(ctx, columns, rows, scan)
    return RescanTally(rows_scanned=len(rows), findings=findings, replacements=dict(replaced))


def check_chunk(
    ctx: GateContext,
    chunk: int,
    lo: int,
    hi: int,
    raw: pd.DataFrame,
    out: pd.DataFrame,
    key: bytes,
    scanner: TextScanner | None = None,
) -> ChunkGate:
    """Every per-chunk check on ``raw`` (the snapshot's rows, with ``_vf_canary``) and
    ``out`` (the operators' outputs, row for row)."""
    started = time.process_time()
    raw, out = raw.reset_index(drop=True), out.reset_index(drop=True)
    if len(out) != len(raw) or not np.array_equal(
        out[ROW].astype(object).to_numpy(), raw[ROW].astype(object).to_numpy()
    ):
        # Rows went missing (or came) between the snapshot and the outputs: check the rows
        # that are written, each against its own snapshot row.
        raw = raw.set_index(ROW, drop=False).reindex(out[ROW].tolist()).reset_index(drop=True)
    canary = (raw[CANARY].astype(object) == "t").to_numpy(dtype=bool)
    real = ~canary
    expectations: dict[str, Tally] = {}
    for spec in build_expectations(ctx):
        if spec.gx_type in PER_ROW and spec.column is not None:
            expectations[spec_key(spec)] = _expectation(
                spec.gx_type, spec.kwargs, _arrow(out[spec.column][real])
            )
    hashed = _token_sketches(ctx, raw, out, real, key)
    risk = _risk_sketch(ctx, out, real, key)
    if risk is not None:
        hashed[RISK] = risk
    canaries: CanaryTally | None = None
    n_canaries = int(np.count_nonzero(canary))
    if n_canaries:
        hiding = [
            n for n, s in ctx.policy.columns.items() if s.action not in NOT_HIDING and n in raw
        ]
        prose = [n for n, s in ctx.policy.columns.items() if s.action == "scrub_text" and n in raw]
        planted = raw[canary][[*hiding, *prose]].astype(object)
        planted = planted.where(planted.notna(), None)
        outputs = out[canary][[c.name for c in ctx.columns]].astype(object)
        outputs = outputs.where(outputs.notna(), None)
        records: list[dict[str, str | None]] = [
            {str(k): v for k, v in rec.items()} for rec in planted.to_dict("records")
        ]
        leaks = canary_leaks(
            records,
            (list(zip(outputs.columns, rec, strict=True)) for rec in outputs.itertuples(False)),
            hiding,
            prose,
        )
        canaries = CanaryTally(planted=n_canaries, in_candidate=n_canaries, leaks=leaks)
    rescan = _rescan(ctx, raw, out, real, scanner)
    summary = ChunkSummary(
        chunk=chunk,
        lo=lo,
        hi=hi,
        rows=int(np.count_nonzero(real)),
        canaries=n_canaries,
        row_checks=_row_checks(ctx, raw, out),
        expectations=expectations,
        formats=_format_proofs(ctx, raw, out, canary),
        text=_text_words(ctx, raw, out),
        canary=canaries,
        rescan=rescan,
        rederived=_rederived(ctx, raw, out, real),
        sketches={name: int(arrays[0].size) for name, arrays in hashed.items()},
        cpu_seconds=round(time.process_time() - started, 4),
    )
    return ChunkGate(summary, {name: sketch.to_bytes(*a) for name, a in hashed.items()})


#: How many 64-bit columns each kind of sketch has (the risk histogram: class hash in two
#: lanes, sensitive value hash in two lanes when there is a sensitive column, count).
def sketch_columns(name: str, with_sensitive: bool) -> int:
    if name.startswith(PAIRS):
        return 2
    if name.startswith(UNIQUE):
        return 1
    if name == RISK:
        return 5 if with_sensitive else 3
    raise ValueError(name)
