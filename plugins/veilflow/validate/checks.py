"""Whole-table checks, computed in SQL where the data is."""

from __future__ import annotations

import time
from collections.abc import Collection, Iterator
from typing import Any

import psycopg
from psycopg import sql

from veilflow.transform.operators.tokenize import readable_token_pattern
from veilflow.validate.context import GateColumn, GateContext
from veilflow.validate.gx_suite import (
    DETERMINISTIC,
    output_pattern,
    token_format_parts,
    token_like,
)
from veilflow.validate.report import CheckResult
from veilflow.zones.run_tables import CANARY, ROW


def no_raw_value_survives(
    conn: psycopg.Connection,
    ctx: GateContext,
    formats_passed: Collection[str] = (),
    proofs: dict[str, tuple[int, int]] | None = None,
) -> list[CheckResult]:
    """For each column whose operator must hide its input and does not keep the input's
    shape: no output value of that column equals any raw value of the same source column.
    (Format-preserving operators are checked row by row by each chunk, ADR 0016: over dense
    values their outputs meet other rows' originals by design.)

    Where the output has a format (readable tokens, masks, a redaction) and the gate's format
    check passed on the column (``formats_passed``), every output value matches the
    format's pattern; so an output equal to a raw value needs a raw value matching that
    pattern, and counting those is one scan of the snapshot for all such columns instead of
    a join per column (the format checks cover the real rows; the canary rows' outputs are
    tested for the format here). ``proofs`` gives those two counts per column as the
    chunks counted them (ADR 0016), and then nothing is scanned for the proof. Only when a raw value does match, a canary's output does
    not, or the format check did not pass is the column compared value for value: a hash
    semi-join on 64-bit hashes, confirmed on the text itself, so a hash collision can never
    fail or pass a run."""
    results = []
    candidates: list[tuple[GateColumn, dict[str, Any]]] = []
    exact: list[GateColumn] = []
    for col, params in format_checked_columns(ctx):
        if _has_format(col, params, "s") is not None and col.name in formats_passed:
            candidates.append((col, params))
        else:
            exact.append(col)
    if candidates and proofs is not None:
        shaped_raw = tuple(proofs.get(col.name, (1, 1))[0] for col, _ in candidates)
        unshaped_canaries = tuple(proofs.get(col.name, (1, 1))[1] for col, _ in candidates)
        seconds = 0.0
    elif candidates:
        t = time.perf_counter()
        # The format checks cover the real rows; the few canary rows' outputs are tested
        # here, beside the raw values.
        shaped_raw = conn.execute(
            sql.SQL("SELECT {} FROM {} s").format(
                sql.SQL(", ").join(
                    sql.SQL("count(*) FILTER (WHERE {})").format(_has_format(col, params, "s"))
                    for col, params in candidates
                ),
                ctx.tables.snapshot,
            )
        ).fetchone() or tuple(0 for _ in candidates)
        unshaped_canaries = conn.execute(
            sql.SQL("SELECT {} FROM {} o WHERE o.{}").format(
                sql.SQL(", ").join(
                    sql.SQL("count(*) FILTER (WHERE o.{} IS NOT NULL AND NOT {})").format(
                        sql.Identifier(col.name), _has_format(col, params, "o")
                    )
                    for col, params in candidates
                ),
                ctx.tables.candidate,
                sql.Identifier(CANARY),
            )
        ).fetchone() or tuple(0 for _ in candidates)
        seconds = (time.perf_counter() - t) / len(candidates)
    if candidates:
        for (col, _), n, m in zip(candidates, shaped_raw, unshaped_canaries, strict=True):
            if int(n) or int(m):
                exact.append(col)  # the proof does not hold: compare values
                continue
            results.append(
                CheckResult(
                    "no_raw_value_survives",
                    True,
                    observed=0,
                    threshold=0,
                    column=col.name,
                    details={"compared": "any row", "proof": "no raw value has the output format"},
                    seconds=seconds,
                )
            )
    for col in exact:
        t = time.perf_counter()
        ident = sql.Identifier(col.name)
        # 64-bit hashes first (a fast semi-join); exact text only to confirm a hit.
        leaked = _count(
            conn,
            sql.SQL(
                "SELECT count(*) FROM {cand} o WHERE hashtextextended(o.{c}::text, 0) IN"
                " (SELECT hashtextextended(s.{c}::text, 0) FROM {snap} s"
                " WHERE s.{c} IS NOT NULL)"
            ).format(cand=ctx.tables.candidate, snap=ctx.tables.snapshot, c=ident),
        )
        if leaked:
            leaked = _count(
                conn,
                sql.SQL(
                    "SELECT count(*) FROM {cand} o WHERE o.{c}::text IN"
                    " (SELECT s.{c}::text FROM {snap} s WHERE s.{c} IS NOT NULL)"
                ).format(cand=ctx.tables.candidate, snap=ctx.tables.snapshot, c=ident),
            )
        results.append(
            CheckResult(
                "no_raw_value_survives",
                leaked == 0,
                observed=leaked,
                threshold=0,
                column=col.name,
                details={"compared": "any row"},
                seconds=time.perf_counter() - t,
            )
        )
    order = {c.name: i for i, c in enumerate(ctx.columns)}
    return sorted(results, key=lambda r: order.get(r.column or "", 0))


def _has_format(col: GateColumn, params: dict[str, Any], alias: str) -> sql.Composable | None:
    """SQL true for a value (``<alias>.<col>``) with the format of ``col``'s output, or None
    when the output has no fixed format. A cheap necessary test (a LIKE) guards the regex."""
    c = sql.SQL("{}.{}::text").format(sql.Identifier(alias), sql.Identifier(col.name))
    if col.action == "redact":
        return sql.SQL("{} = {}").format(c, sql.Literal(params.get("replacement", "[REDACTED]")))
    pattern = output_pattern(col, params)
    if pattern is None:
        return None
    parts = token_format_parts(col, params)
    if parts is not None:
        regex, like = parts  # together exactly the pattern, and cheaper than it
    elif col.action == "tokenize":
        regex, like = pattern, token_like(str(params.get("prefix", "tok")))
    else:
        return sql.SQL("{} ~ {}").format(c, sql.Literal(pattern))
    return sql.SQL("CASE WHEN {c} LIKE {like} THEN {c} ~ {rx} ELSE false END").format(
        c=c, like=sql.Literal(like), rx=sql.Literal(regex)
    )


def _count(conn: psycopg.Connection, query: sql.Composed) -> int:
    row = conn.execute(query).fetchone()
    return int(row[0]) if row else 0


#: Character classes a format-preserving token keeps: digit→digit, a-z→a-z, A-Z→A-Z.
_CLASS_FROM = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
_CLASS_TO = "9" * 10 + "a" * 26 + "A" * 26
#: Values an operator could not transform in place and replaced by a readable token
#: (``on_invalid: token``); counted by the transform, not a format violation.
FALLBACK_PATTERN = readable_token_pattern()


def format_checked_columns(ctx: GateContext) -> Iterator[tuple[GateColumn, dict[str, Any]]]:
    """The columns that must hide their raw values and whose output keeps no shape of the
    input, each with its operator's parameters: "no raw value survives" may rest on their
    output format."""
    for col in ctx.columns:
        if not col.hides_raw:
            continue
        spec = ctx.policy.columns.get(col.name)
        params = dict(spec.params) if spec is not None else {}
        if _shape_map(col, params) is None:
            yield col, params


def _shape_map(col: GateColumn, params: dict[str, object]) -> tuple[str, str] | None:
    """``translate()`` arguments that reduce a value to its pattern under ``col``'s operator,
    or None when the operator does not promise to keep the pattern."""
    if col.action == "tokenize" and params.get("format") == "preserve":
        return _CLASS_FROM, _CLASS_TO
    if col.action == "ff1":
        from veilflow.policy.operators import ALPHABETS

        alphabet = str(params.get("alphabet", "digits"))
        chars = ALPHABETS.get(alphabet, alphabet)
        return chars, "\x01" * len(chars)
    return None


def value_determined(ctx: GateContext) -> list[GateColumn]:
    """Columns whose output is a function of the input value alone: a deterministic
    operator (tokens, FF1) without a context tweak, which sets equal values apart on
    purpose."""
    cols = []
    for col in ctx.columns:
        spec = ctx.policy.columns.get(col.name)
        if col.action in DETERMINISTIC and not (
            spec is not None and spec.params.get("context_column")
        ):
            cols.append(col)
    return cols


def token_results(
    column: str, collisions: int, inconsistent: int, seconds: float = 0.0, **details: Any
) -> list[CheckResult]:
    """The ``token_unique`` and ``token_joinable`` results of one column."""
    return [
        CheckResult(
            name,
            count == 0,
            observed=count,
            threshold=0,
            column=column,
            details={"meaning": meaning, **details},
            seconds=seconds,
        )
        for name, count, meaning in (
            ("token_unique", collisions, "output values shared by distinct originals"),
            ("token_joinable", inconsistent, "originals with more than one output"),
        )
    ]


def raw_values_in_text(
    conn: psycopg.Connection, ctx: GateContext, text_columns: list[str], *, min_length: int = 6
) -> list[CheckResult]:
    """No raw value of a column the policy hides appears inside a text output column.

    Each output text is split into whitespace-separated words (surrounding punctuation
    trimmed); the distinct words of all text columns form the small side of one hash join
    that every raw value of every hiding column probes, in SQL. Catches single-word values
    with a digit or an ``@`` (e-mail addresses, SSNs, card and account numbers, IBANs, IP
    addresses, dashed phone numbers, numeric ids): the identifiers and contact data a
    scrubber can miss whole; names and other prose are the rescan's job. Observed: distinct
    raw values found per column."""
    hiding = [c for c in ctx.columns if c.hides_raw and c.name not in text_columns]
    if not text_columns or not hiding:
        return []
    t = time.perf_counter()
    words = sql.SQL(" UNION ALL ").join(
        sql.SQL(
            "SELECT {label} AS col, regexp_split_to_table(o.{c}, '\\s+') AS word"
            " FROM {cand} o WHERE o.{c} ~ '[0-9@]'"
        ).format(label=sql.Literal(name), c=sql.Identifier(name), cand=ctx.tables.candidate)
        for name in text_columns
    )
    raw = sql.SQL(" UNION ALL ").join(
        sql.SQL("SELECT {c}::text AS v FROM {snap} WHERE {c} IS NOT NULL").format(
            c=sql.Identifier(c.name), snap=ctx.tables.snapshot
        )
        for c in hiding
    )
    found: dict[str, int] = {}
    # Readable tokens (``tok_v…``), most of the words with a digit in scrubbed text, equal a
    # raw value only if a raw value is shaped like a token; they are left out of the words
    # unless one is.
    token_raw = _count(
        conn,
        sql.SQL("SELECT count(*) FROM ({raw}) r WHERE r.v LIKE {token}").format(
            raw=raw, token=sql.Literal(token_like())
        ),
    )
    skip_tokens = (
        sql.SQL("AND word NOT LIKE {}").format(sql.Literal(token_like()))
        if token_raw == 0
        else sql.SQL("")
    )
    with conn.transaction():
        # The words first, into a temporary table: most kept columns hold none worth
        # probing, and then the raw values need not be read again.
        conn.execute(
            sql.SQL(
                "CREATE TEMPORARY TABLE vf_gate_words ON COMMIT DROP AS SELECT DISTINCT col, word"
                " FROM (SELECT col, trim(BOTH {punct} FROM word) AS word FROM ({words}) x) y"
                " WHERE length(word) >= {n} AND word ~ '[0-9@]' {skip_tokens}"
            ).format(
                words=words,
                n=sql.Literal(min_length),
                punct=sql.Literal(".,;:!?()[]{}<>\"'"),
                skip_tokens=skip_tokens,
            )
        )
        if _count(conn, sql.Composed([sql.SQL("SELECT count(*) FROM vf_gate_words")])):
            # The planner cannot know how many words a text holds; a nested loop over rows
            # x values would run for hours, so insist on hashing.
            conn.execute("SET LOCAL enable_nestloop = off")
            q = sql.SQL(
                "SELECT w.col, count(DISTINCT w.word) FROM ({raw}) r"
                " JOIN vf_gate_words w ON w.word = r.v GROUP BY w.col"
            ).format(raw=raw)
            found = {str(c): int(n) for c, n in conn.execute(q).fetchall()}
    seconds = (time.perf_counter() - t) / len(text_columns)
    return [
        CheckResult(
            "no_raw_value_in_text",
            found.get(name, 0) == 0,
            observed=found.get(name, 0),
            threshold=0,
            column=name,
            details={"searched": [c.name for c in hiding]},
            seconds=seconds,
        )
        for name in text_columns
    ]


def rederived_result(column: str, differ: int, sampled: int, seconds: float = 0.0) -> CheckResult:
    """``token_rederived`` of one column: of ``sampled`` rows, ``differ`` whose output the
    key does not derive again from the raw value (passes at zero)."""
    return CheckResult(
        "token_rederived",
        differ == 0,
        observed=differ,
        threshold=0,
        column=column,
        details={"sampled": sampled},
        seconds=seconds,
    )


def tokens_rederived(
    conn: psycopg.Connection, ctx: GateContext, sample: int = 1000
) -> list[CheckResult]:
    """Joinability across tables: for a sample of rows, applying the run's operator to the
    raw value again gives exactly the candidate's value. Any other table tokenized under the
    same key scope computes the same function, so equal originals meet on equal tokens.

    The sample is the first rows of every chunk (``sample`` in all), so a chunk that ran
    with another key or operator cannot hide; each chunk's rows are read from its own
    partition only."""
    if ctx.recompute is None:
        return []
    import pandas as pd

    from veilflow.transform.base import STRING

    cols = value_determined(ctx)
    if not cols:
        return []
    t = time.perf_counter()
    step = ctx.policy.chunk_rows
    chunks = max(1, -(-ctx.rows_in // step))
    per_chunk = max(1, -(-sample // chunks))

    def ranges(alias: str) -> sql.Composable:
        return sql.SQL(" OR ").join(
            sql.SQL("({row} >= {lo} AND {row} < {hi})").format(
                row=sql.SQL(alias + ".{}").format(sql.Identifier(ROW)),
                lo=sql.Literal(1 + i * step),
                hi=sql.Literal(1 + i * step + per_chunk),
            )
            for i in range(chunks)
        )

    pairs = sql.SQL(", ").join(
        sql.SQL("s.{c}::text, o.{c}::text").format(c=sql.Identifier(c.name)) for c in cols
    )
    with conn.transaction():
        # The sampled rows find their snapshot rows through its index.
        conn.execute("SET LOCAL enable_nestloop = on")
        rows = conn.execute(
            sql.SQL(
                "SELECT {pairs} FROM {snap} s JOIN {cand} o USING ({row})"
                " WHERE ({s_ranges}) AND ({o_ranges}) AND NOT s.{canary}"
            ).format(
                pairs=pairs,
                snap=ctx.tables.snapshot,
                cand=ctx.tables.candidate,
                row=sql.Identifier(ROW),
                s_ranges=ranges("s"),
                o_ranges=ranges("o"),
                canary=sql.Identifier(CANARY),
            )
        ).fetchall()
    fetched = time.perf_counter() - t
    results = []
    for i, col in enumerate(cols):
        t = time.perf_counter()
        kept = [(r[2 * i], r[2 * i + 1]) for r in rows if r[2 * i] is not None]
        if not kept:
            continue
        raw = pd.Series([k[0] for k in kept], dtype=STRING)
        again = ctx.recompute(col.name, raw).astype(STRING)
        out = pd.Series([k[1] for k in kept], dtype=STRING)
        differ = int((again.fillna("\x00") != out.fillna("\x00")).sum())
        seconds = time.perf_counter() - t + fetched / len(cols)
        results.append(rederived_result(col.name, differ, len(kept), seconds))
    return results
