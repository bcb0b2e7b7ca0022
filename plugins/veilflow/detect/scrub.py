"""``scrub_text``: find PII in free-text values and replace each finding with a transform
operator, the same operator (and key) a structured column would use.

    note: {action: scrub_text, entities: [PERSON, EMAIL_ADDRESS, PHONE_NUMBER],
           with: {EMAIL_ADDRESS: {action: tokenize, keep_domain: true}, PERSON: surrogate}}

Per chunk: scan all values in one batch, collect every span of every row, group the span
texts by entity, run one vectorized ``apply`` per group, then splice replacements back.
Then once more over the texts that changed: what the engine now finds outside the first
pass's replacements is replaced too (counted as ``rescrubbed``), so the output does not hold
what the same engine finds in it, which is what the validation gate's rescan looks for.
So ``jane@x.org`` in the ``email`` column (tokenize, keep_domain) and in a note become the
same token. A value that cannot be scanned is redacted whole and counted as
``unscannable``; findings are counted per entity (``entity:PERSON``), never recorded.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from typing import Any, ClassVar

import pandas as pd

from veilflow.detect.model import version_of
from veilflow.detect.scanner import Scanner, scanner_for
from veilflow.detect.spans import Span
from veilflow.policy.detection import DetectionSettings
from veilflow.policy.operators import ScrubTextConfig
from veilflow.transform.base import STRING, ChunkContext, ColumnContext, Operator
from veilflow.transform.operators.basic import Mask, Redact
from veilflow.transform.operators.tokenize import Tokenize

log = logging.getLogger(__name__)

UNSCANNABLE = "[UNSCANNABLE]"
#: What ``surrogate`` gives each entity: a realistic fake from its own pool, or for
#: identifier-shaped numbers (records, accounts, plans, licences, vehicles, devices, cards,
#: IPs) the GENERIC one, a keyed fake of the same shape (digits for digits, letters for
#: letters). Entities missing here get their typed placeholder (``PLACEHOLDER_ONLY``).
SURROGATE_ENTITY: dict[str, str] = {
    "PERSON": "PERSON",
    "EMAIL_ADDRESS": "EMAIL_ADDRESS",
    "PHONE_NUMBER": "PHONE_NUMBER",
    "LOCATION": "LOCATION",
    "DATE_TIME": "DATE_TIME",
}
#: Entities whose replacement is always their typed placeholder (``[URL]``), ``surrogate``
#: included: a fake URL or photo file name in the same shape would read as a real one, a
#: biometric template has no realistic fake, and HIPAA puts every age over 89 in one
#: category, so no fake age may stand in for one.
PLACEHOLDER_ONLY = frozenset({"URL", "PHOTO_FILE", "BIOMETRIC_ID", "AGE_OVER_89"})


def placeholder(entity: str) -> str:
    """The typed placeholder that ``redact`` (scrub_text's default) puts for ``entity``."""
    return f"[{entity}]"


def _operator_classes() -> dict[str, type[Operator]]:  # type: ignore[type-arg]
    classes: dict[str, type[Operator]] = {  # type: ignore[type-arg]
        "redact": Redact,
        "mask": Mask,
        "tokenize": Tokenize,
    }
    try:
        from veilflow.transform.operators.surrogate import Surrogate

        classes["surrogate"] = Surrogate
    except ImportError:  # pragma: no cover - surrogate ships with transform
        log.warning("surrogate operator unavailable; scrub_text falls back to redact")
        classes["surrogate"] = Redact
    return classes


class ScrubText(Operator[ScrubTextConfig]):
    """Replace the PII found in free text, entity by entity, with transform operators."""

    name: ClassVar[str] = "scrub_text"
    Config = ScrubTextConfig
    gdpr = "pseudonymous"
    gdpr_reason = (
        "detected personal data replaced in the text; residual risk from what detection misses"
    )
    lineage_subtype = "MASKED"
    hides_raw = False  # a note without PII stays as it is

    def __init__(self, config: ScrubTextConfig, column: ColumnContext) -> None:
        super().__init__(config, column)
        classes = _operator_classes()
        self._scanner: Scanner | None = None
        self._ops: dict[str, Operator] = {}  # type: ignore[type-arg]
        for entity in config.entities:
            action, params = config.replacement_for(entity)
            if action not in classes:
                raise ValueError(
                    f"scrub_text cannot replace with {action!r}; use one of {sorted(classes)}"
                )
            if action == "surrogate" and entity in PLACEHOLDER_ONLY:
                action, params = "redact", {}
            cls = classes[action]
            if action == "surrogate" and cls is not Redact:
                params = {"entity": SURROGATE_ENTITY.get(entity, "GENERIC"), **params}
            elif action == "redact" or cls is Redact:
                params = {"replacement": placeholder(entity), **params}
            self._ops[entity] = cls(cls.Config(**params), column)

    @property
    def scanner(self) -> Scanner:
        return self._scanner or scanner_for(self.config.detection)

    def use_scanner(self, scanner: Scanner) -> None:
        """Scan with ``scanner`` instead of the settings' own (a candidate detector under
        evaluation)."""
        self._scanner = scanner

    @property
    def detector_version(self) -> str | None:
        """The trained detector version the settings stand for (None: rules only)."""
        if self._scanner is not None:
            return self._scanner.detector.version if self._scanner.detector else None
        return version_of((self.config.detection or DetectionSettings()).detector)

    def params(self) -> dict[str, Any]:
        # The detector version, resolved: the manifest and lineage name the model a run used.
        return {**super().params(), "detector_version": self.detector_version}

    def describe(self) -> str:
        parts = ", ".join(f"{e}→{op.name}" for e, op in self._ops.items())
        return f"scrub_text ({parts}) detector={self.detector_version or 'none'}"

    def apply(self, values: pd.Series, chunk: ChunkContext) -> pd.Series:
        out = values.astype(object).copy()
        present = values.notna().to_numpy()
        positions = [i for i, p in enumerate(present) if p]
        texts = [values.iloc[i] for i in positions]
        scan = self.scanner.scan(texts, entities=self.config.entities)
        for k in scan.unscannable:
            out.iloc[positions[k]] = UNSCANNABLE
        self.chunk_count(chunk, "unscannable", len(scan.unscannable))
        rows = [k for k, spans in enumerate(scan.spans) if spans and k not in scan.reasons]
        first = self._replace([texts[k] for k in rows], [scan.spans[k] for k in rows], chunk)
        # Second pass over the texts the first one changed: a replacement changes the
        # context of what is left around it, and the engine may now find what it missed
        # ("Virginia Campbell" → "[LOCATION] Campbell" → PERSON "Campbell"). Findings inside
        # the first pass's replacements are those replacements (shaped like PII on purpose)
        # and stay; anything else is replaced too, so the output never holds what the same
        # engine finds in it. Bounded: the second pass's own output is not scanned again.
        again = self.scanner.scan([t for t, _ in first], entities=self.config.entities)
        extra = [
            _outside(t, spans, done) for (t, done), spans in zip(first, again.spans, strict=True)
        ]
        todo = [j for j, spans in enumerate(extra) if spans]
        second = self._replace([first[j][0] for j in todo], [extra[j] for j in todo], chunk)
        final = [t for t, _ in first]
        for j, (t, _) in zip(todo, second, strict=True):
            final[j] = t
        self.chunk_count(chunk, "rescrubbed", len(todo))
        for k, text in zip(rows, final, strict=True):
            out.iloc[positions[k]] = text
        return pd.Series(pd.array(out.tolist(), dtype=STRING), index=values.index)

    def chunk_count(self, chunk: ChunkContext, what: str, n: int) -> None:
        chunk.count(self.column.column, what, n)

    def _replace(
        self, texts: list[str], found: list[list[Span]], chunk: ChunkContext
    ) -> list[tuple[str, list[tuple[int, int]]]]:
        """Each text with its spans replaced, entity by entity in one vectorized call per
        entity, and where the replacements now sit in it."""
        groups: dict[str, list[tuple[int, int, int]]] = defaultdict(list)
        for k, spans in enumerate(found):
            for s in spans:
                if s.entity in self._ops:
                    groups[s.entity].append((k, s.start, s.end))
        by_row: dict[int, list[tuple[int, int, str]]] = defaultdict(list)
        for entity, items in groups.items():
            originals = pd.Series([texts[k][a:b] for k, a, b in items], dtype=STRING)
            new = self._ops[entity].apply(originals, chunk).astype(object).tolist()
            for (k, a, b), r in zip(items, new, strict=True):
                by_row[k].append((a, b, "" if r is None or r is pd.NA else str(r)))
            self.chunk_count(chunk, f"entity:{entity}", len(items))
        result: list[tuple[str, list[tuple[int, int]]]] = []
        for k, text in enumerate(texts):
            pieces: list[str] = []
            regions: list[tuple[int, int]] = []
            pos = size = 0
            for a, b, r in sorted(by_row.get(k, ())):
                pieces.append(text[pos:a])
                size += a - pos
                pieces.append(r)
                regions.append((size, size + len(r)))
                size += len(r)
                pos = b
            pieces.append(text[pos:])
            result.append(("".join(pieces), regions))
        return result


def _outside(text: str, spans: list[Span], done: list[tuple[int, int]]) -> list[Span]:
    """The parts of ``spans`` outside the replacements ``done`` (the longest part of each,
    trimmed of spaces and punctuation): what a second pass still has to replace."""
    kept: list[Span] = []
    for s in spans:
        parts = [(s.start, s.end)]
        for a, b in done:
            parts = [p for x, y in parts for p in ((x, min(y, a)), (max(x, b), y)) if p[0] < p[1]]
        if not parts:
            continue
        x, y = max(parts, key=lambda p: p[1] - p[0])
        while x < y and not text[x].isalnum():
            x += 1
        while y > x and not text[y - 1].isalnum():
            y -= 1
        if y - x >= 2:
            kept.append(Span(x, y, s.entity, s.score, s.source))
    return kept
