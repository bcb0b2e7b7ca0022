"""``scrub_text``: find PII in free-text values and replace each finding with a transform
operator, the same operator (and key) a structured column would use.

    note: {action: scrub_text, entities: [PERSON, EMAIL_ADDRESS, PHONE_NUMBER],
           with: {EMAIL_ADDRESS: {action: tokenize, keep_domain: true}, PERSON: surrogate}}

Per chunk: scan all values in one batch, collect every span of every row, group the span
texts by entity, run one vectorized ``apply`` per group, then splice replacements back.
So ``jane@x.org`` in the ``email`` column (tokenize, keep_domain) and in a note become the
same token. A value that cannot be scanned is redacted whole and counted as
``unscannable``; findings are counted per entity (``entity:PERSON``), never recorded.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from typing import Any, ClassVar, Literal

import pandas as pd
from pydantic import ConfigDict, Field, field_validator

from veilflow.detect.scanner import Scanner, scanner_for
from veilflow.detect.spans import ENTITIES
from veilflow.policy.detection import DetectionSettings
from veilflow.transform.base import (
    STRING,
    ChunkContext,
    ColumnContext,
    Operator,
    OperatorConfig,
)
from veilflow.transform.operators.basic import Mask, Redact
from veilflow.transform.operators.tokenize import Tokenize

log = logging.getLogger(__name__)

Replacement = Literal["redact", "mask", "tokenize", "surrogate"]
UNSCANNABLE = "[UNSCANNABLE]"
#: Surrogate pools exist for these; other entities get the format-preserving GENERIC one.
_SURROGATE_ENTITY = {"PERSON": "PERSON", "EMAIL_ADDRESS": "EMAIL_ADDRESS",
                     "PHONE_NUMBER": "PHONE_NUMBER", "LOCATION": "LOCATION",
                     "DATE_TIME": "DATE_TIME"}


def _operator_classes() -> dict[str, type[Operator]]:  # type: ignore[type-arg]
    classes: dict[str, type[Operator]] = {  # type: ignore[type-arg]
        "redact": Redact, "mask": Mask, "tokenize": Tokenize}
    try:
        from veilflow.transform.operators.surrogate import Surrogate

        classes["surrogate"] = Surrogate
    except ImportError:  # pragma: no cover - surrogate ships with transform
        log.warning("surrogate operator unavailable; scrub_text falls back to redact")
        classes["surrogate"] = Redact
    return classes


class ScrubTextConfig(OperatorConfig):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    #: Entity types to find and replace (default: every type the scanner knows).
    entities: list[str] = Field(default_factory=lambda: list(ENTITIES))
    #: One operator for all entities, or a mapping entity → operator; an operator is its name
    #: or ``{action: <name>, <its params>}``. Entities missing from a mapping are redacted.
    with_: Replacement | dict[str, Any] | dict[str, Replacement | dict[str, Any]] = Field(
        default="redact", alias="with")
    #: The policy's ``detection:`` settings (filled in by the planner when absent).
    detection: DetectionSettings | None = None

    @field_validator("with_")
    @classmethod
    def _replacements(cls, v: Any) -> Any:
        allowed = set(Replacement.__args__)  # type: ignore[attr-defined]
        specs = [v] if isinstance(v, str) or (isinstance(v, dict) and "action" in v) else list(
            v.values())
        for spec in specs:
            action = spec if isinstance(spec, str) else spec.get("action")
            if action not in allowed:
                raise ValueError(f"replacement must be one of {sorted(allowed)}, got {action!r}")
        return v

    @field_validator("entities")
    @classmethod
    def _entities(cls, v: list[str]) -> list[str]:
        bad = [e for e in v if not e.replace("_", "").isalnum() or not e.isupper()]
        if bad:
            raise ValueError(f"entity names are upper-case identifiers, got {bad}")
        return v

    def replacement_for(self, entity: str) -> tuple[str, dict[str, Any]]:
        spec: Any = self.with_
        if isinstance(spec, dict) and "action" not in spec:
            spec = spec.get(entity, "redact")
        if isinstance(spec, str):
            return spec, {}
        params = {k: v for k, v in dict(spec).items() if k != "action"}
        return str(spec["action"]), params


class ScrubText(Operator[ScrubTextConfig]):
    """Replace the PII found in free text, entity by entity, with transform operators."""

    name: ClassVar[str] = "scrub_text"
    Config = ScrubTextConfig
    gdpr = "pseudonymous"
    gdpr_reason = ("detected personal data replaced in the text; residual risk from what "
                   "detection misses")
    lineage_subtype = "MASKED"
    hides_raw = False  # a note without PII stays as it is

    def __init__(self, config: ScrubTextConfig, column: ColumnContext) -> None:
        super().__init__(config, column)
        classes = _operator_classes()
        self._ops: dict[str, Operator] = {}  # type: ignore[type-arg]
        for entity in config.entities:
            action, params = config.replacement_for(entity)
            if action not in classes:
                raise ValueError(f"scrub_text cannot replace with {action!r}; "
                                 f"use one of {sorted(classes)}")
            cls = classes[action]
            if action == "surrogate" and cls is not Redact:
                params = {"entity": _SURROGATE_ENTITY.get(entity, "GENERIC"), **params}
            elif action == "redact" or cls is Redact:
                params = {"replacement": f"[{entity}]", **params}
            self._ops[entity] = cls(cls.Config(**params), column)

    @property
    def scanner(self) -> Scanner:
        return scanner_for(self.config.detection)

    def describe(self) -> str:
        parts = ", ".join(f"{e}→{op.name}" for e, op in self._ops.items())
        return f"scrub_text ({parts})"

    def apply(self, values: pd.Series, chunk: ChunkContext) -> pd.Series:
        column = self.column.column
        out = values.astype(object).copy()
        present = values.notna().to_numpy()
        positions = [i for i, p in enumerate(present) if p]
        texts = [values.iloc[i] for i in positions]
        scan = self.scanner.scan(texts, entities=self.config.entities)
        for k in scan.unscannable:
            out.iloc[positions[k]] = UNSCANNABLE
        chunk.count(column, "unscannable", len(scan.unscannable))
        # Collect every span of every row, grouped by entity.
        groups: dict[str, list[tuple[int, int, int]]] = defaultdict(list)
        for k, spans in enumerate(scan.spans):
            for s in spans:
                if s.entity in self._ops:
                    groups[s.entity].append((k, s.start, s.end))
        replaced: dict[tuple[int, int], tuple[int, str]] = {}
        for entity, items in groups.items():
            originals = pd.Series([texts[k][a:b] for k, a, b in items], dtype=STRING)
            new = self._ops[entity].apply(originals, chunk).astype(object).tolist()
            for (k, a, b), r in zip(items, new, strict=True):
                replaced[(k, a)] = (b, "" if r is None or r is pd.NA else str(r))
            chunk.count(column, f"entity:{entity}", len(items))
        by_row: dict[int, list[tuple[int, int, str]]] = defaultdict(list)
        for (k, a), (b, r) in replaced.items():
            by_row[k].append((a, b, r))
        for k, edits in by_row.items():
            if k in scan.reasons:
                continue
            text = texts[k]
            pieces, pos = [], 0
            for a, b, r in sorted(edits):
                pieces.append(text[pos:a])
                pieces.append(r)
                pos = b
            pieces.append(text[pos:])
            out.iloc[positions[k]] = "".join(pieces)
        return pd.Series(pd.array(out.tolist(), dtype=STRING), index=values.index)
