"""The gate's expectations as plain specs, derived from the gate context (nothing is typed
twice): the schema (column set and types as the plan says), row-count parity with the
snapshot minus suppressed rows, not-null where the source column is NOT NULL, the output
format of each operator, and uniqueness of a deterministically transformed source key.
``veilflow.validate.gx_suite`` runs them with Great Expectations; building them needs no GX.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from veilflow.transform.operators.tokenize import (
    TOKEN_ALPHABET,
    TOKEN_LENGTH,
    readable_token_pattern,
)
from veilflow.validate.context import GateColumn, GateContext
from veilflow.zones.run_tables import CANARY, ROW

#: Operators whose output is a function of the input alone (same input, same output).
DETERMINISTIC = frozenset({"tokenize", "ff1"})


@dataclass(frozen=True)
class ExpectationSpec:
    """One expectation: the veilflow check it implements, GX's class name and arguments."""

    check: str
    gx_type: str
    kwargs: dict[str, Any]
    column: str | None = None
    #: ``table`` runs on the whole candidate (schema); ``rows`` on its real rows only.
    scope: str = "rows"
    meta: dict[str, Any] = field(default_factory=dict)


def spec_key(spec: ExpectationSpec) -> str:
    """A name for an expectation that stays the same from chunk to gate: check, GX class,
    column."""
    return f"{spec.check}|{spec.gx_type}|{spec.column or ''}"


#: Expectations a chunk decides row by row on its real rows (the rest need the whole table
#: or its catalog: schema, row count, uniqueness).
PER_ROW = frozenset(
    {
        "ExpectColumnValuesToNotBeNull",
        "ExpectColumnValuesToMatchRegex",
        "ExpectColumnValuesToMatchLikePattern",
        "ExpectColumnValuesToBeInSet",
    }
)


def gx_type_names(pg_type: str) -> list[str]:
    """How SQLAlchemy (hence GX) names a PostgreSQL type from ``format_type``."""
    t = pg_type.strip().lower()
    upper = re.sub(r",\s*", ", ", t).upper()
    names = {upper}
    aliases = {
        "character varying": "VARCHAR",
        "character": "CHAR",
        "double precision": "DOUBLE PRECISION",
        "timestamp with time zone": "TIMESTAMP WITH TIME ZONE",
        "timestamp without time zone": "TIMESTAMP",
        "time without time zone": "TIME",
    }
    for pg in sorted(aliases, key=len, reverse=True):  # "character varying" before "character"
        if t.startswith(pg):
            names.add(aliases[pg] + upper[len(pg) :])
            break
    if t in ("double precision",):
        names.add("DOUBLE_PRECISION")
    return sorted(names)


def output_pattern(col: GateColumn, params: dict[str, Any]) -> str | None:
    """The regex every non-NULL output value of ``col`` must match, or None where the
    format is checked per row against the input (FF1, format-preserving tokens) or free."""
    action = col.action
    if action == "tokenize" and params.get("format", "readable") == "readable":
        # The kept domain is what follows the value's last "@", so it holds no "@" itself.
        domain = "(@[^@]*)?" if params.get("keep_domain") else ""
        return readable_token_pattern(str(params.get("prefix", "tok"))) + domain + "$"
    if action == "mask":
        char = re.escape(str(params.get("char", "*")))
        first, last = int(params.get("keep_first", 0)), int(params.get("keep_last", 0))
        return rf"^(.{{0,{first}}}{char}+.{{0,{last}}}|)$"
    if action == "generalize":
        if params.get("truncate") is not None:
            return {
                "year": r"^[0-9]{4}$",
                "month": r"^[0-9]{4}-[0-9]{2}$",
                "day": r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$",
            }[str(params["truncate"])]
        if params.get("bucket") is not None:
            # "lo-hi", plus "<bottom" and "top+" exactly as configured: an age column
            # generalized with top: 90 (HIPAA's ages over 89) shows "90+", never "95+".
            labels = [r"-?[0-9]+--?[0-9]+"]
            if params.get("bottom") is not None:
                labels.append(f"<{int(params['bottom'])}")
            if params.get("top") is not None:
                labels.append(rf"{int(params['top'])}\+")
            return "^(" + "|".join(labels) + ")$"
        keep = int(params.get("keep_prefix") or 0)
        fill = str(params.get("fill", "*"))
        return rf"^.{{0,{keep}}}{re.escape(fill)}*$" if fill else rf"^.{{0,{keep}}}$"
    return None


def token_format_parts(col: GateColumn, params: dict[str, Any]) -> tuple[str, str] | None:
    """For a readable token without a kept domain, its format as two cheap tests that
    together mean exactly :func:`output_pattern`'s regex: a regex without the length bound
    (``^P_v[0-9]+_[a-z2-7]*$``) and a LIKE pattern fixing the digest's length
    (``P\\_v%\\_`` and 26 ``_``). PostgreSQL's regex engine spends ~4x longer on a bounded
    repetition (``{26}``) than on ``*``; LIKE checks length at almost no cost.

    Why the pair is exact: a value matching the regex has no ``_`` after ``P_v`` but the
    separator (digits and digest hold none), and LIKE puts an ``_`` after ``P_v`` at the
    27th character from the end: that can only be the separator, so the digest has 26
    letters. The converse is immediate. None for other formats."""
    if (
        col.action != "tokenize"
        or params.get("format", "readable") != "readable"
        or params.get("keep_domain")
    ):
        return None
    prefix = str(params.get("prefix", "tok"))
    regex = rf"^{re.escape(prefix)}_v[0-9]+_{TOKEN_ALPHABET}*$"
    return regex, token_like(prefix) + "\\_" + "_" * TOKEN_LENGTH


def token_like(prefix: str = "tok") -> str:
    """A LIKE pattern every readable token with ``prefix`` matches (``<prefix>_v...``)."""
    return _like_literal(prefix) + "\\_v%"


def _like_literal(text: str) -> str:
    """``text`` escaped for a LIKE pattern (``\\`` is LIKE's default escape)."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def build_expectations(ctx: GateContext, *, suppressed: int = 0) -> list[ExpectationSpec]:
    """Every expectation the policy implies for this run's candidate."""
    policy = ctx.policy
    specs: list[ExpectationSpec] = [
        ExpectationSpec(
            "schema_columns",
            "ExpectTableColumnsToMatchSet",
            {"column_set": [*(c.name for c in ctx.columns), ROW, CANARY], "exact_match": True},
            scope="table",
        ),
        ExpectationSpec(
            "row_count_parity",
            "ExpectTableRowCountToEqual",
            {"value": ctx.rows_in - suppressed},
            meta={"rows_in": ctx.rows_in, "suppressed": suppressed},
        ),
    ]
    for col in ctx.columns:
        specs.append(
            ExpectationSpec(
                "schema_type",
                "ExpectColumnValuesToBeInTypeList",
                {"column": col.name, "type_list": gx_type_names(col.output_type)},
                column=col.name,
                scope="table",
            )
        )
    for col in ctx.columns:
        spec = policy.columns.get(col.name)
        params = dict(spec.params) if spec is not None else {}
        if col.not_null:
            specs.append(
                ExpectationSpec(
                    "not_null",
                    "ExpectColumnValuesToNotBeNull",
                    {"column": col.name},
                    column=col.name,
                )
            )
        pattern = output_pattern(col, params)
        parts = token_format_parts(col, params)
        if parts is not None:
            regex, like = parts
            meta = {"operator": col.action, "format": pattern}
            specs.append(
                ExpectationSpec(
                    "format",
                    "ExpectColumnValuesToMatchRegex",
                    {"column": col.name, "regex": regex},
                    column=col.name,
                    meta={**meta, "part": "alphabet"},
                )
            )
            specs.append(
                ExpectationSpec(
                    "format",
                    "ExpectColumnValuesToMatchLikePattern",
                    {"column": col.name, "like_pattern": like},
                    column=col.name,
                    meta={**meta, "part": "length"},
                )
            )
        elif pattern is not None:
            specs.append(
                ExpectationSpec(
                    "format",
                    "ExpectColumnValuesToMatchRegex",
                    {"column": col.name, "regex": pattern},
                    column=col.name,
                    meta={"operator": col.action},
                )
            )
        if col.action == "redact":
            specs.append(
                ExpectationSpec(
                    "format",
                    "ExpectColumnValuesToBeInSet",
                    {"column": col.name, "value_set": [params.get("replacement", "[REDACTED]")]},
                    column=col.name,
                    meta={"operator": col.action},
                )
            )
        if col.name == policy.source.key and col.action in DETERMINISTIC:
            # A unique source key must stay unique: distinct originals stay distinct.
            specs.append(
                ExpectationSpec(
                    "unique",
                    "ExpectColumnValuesToBeUnique",
                    {"column": col.name},
                    column=col.name,
                    meta={"operator": col.action},
                )
            )
    return specs
