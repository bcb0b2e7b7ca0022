"""Detected spans and how overlapping findings are resolved into one answer per character."""

from __future__ import annotations

from dataclasses import dataclass

# Every entity type the scanner reports, in the order findings win an overlap. The policy
# layer names them, as ``scrub_text``'s parameters are checked when a policy loads.
from veilflow.policy.entities import ENTITIES as ENTITIES

_RANK = {e: i for i, e in enumerate(ENTITIES)}
#: Characters trimmed from the edges of a model's span.
EDGE = " \t\n,;:\"'“”‘’()[]-–—"


@dataclass(frozen=True, slots=True)
class Span:
    """One finding in one text: ``text[start:end]`` is an ``entity`` with ``score``."""

    start: int
    end: int
    entity: str
    score: float
    source: str = ""

    def as_dict(self) -> dict[str, object]:
        return {
            "start": self.start,
            "end": self.end,
            "entity": self.entity,
            "score": round(self.score, 3),
        }


def rank(entity: str) -> int:
    """Overlap priority: custom entities (policy deny lists, regexes) first, then ``ENTITIES``."""
    return _RANK.get(entity, -1)


def resolve(spans: list[Span], min_len: int = 2) -> list[Span]:
    """One non-overlapping answer: same-entity overlaps merge; across entities the higher
    priority wins and the loser keeps only its longer non-overlapping remainder."""
    if not spans:
        return []
    merged: list[Span] = []
    for s in sorted(spans, key=lambda s: (s.entity, s.start, -s.end)):
        last = merged[-1] if merged else None
        if last is not None and last.entity == s.entity and s.start < last.end:
            merged[-1] = Span(
                last.start,
                max(last.end, s.end),
                s.entity,
                max(last.score, s.score),
                last.source or s.source,
            )
        else:
            merged.append(s)
    kept: list[Span] = []
    for s in sorted(merged, key=lambda s: (rank(s.entity), -s.score, s.start - s.end)):
        start, end = s.start, s.end
        for k in kept:
            if start >= k.end or end <= k.start:
                continue
            left, right = k.start - start, end - k.end
            if left <= 0 and right <= 0:
                start = end  # swallowed
                break
            if left >= right:
                end = k.start
            else:
                start = k.end
        if end - start >= min_len:
            kept.append(
                s
                if (start, end) == (s.start, s.end)
                else Span(start, end, s.entity, s.score, s.source)
            )
    return sorted(kept, key=lambda s: s.start)


def without_edges(text: str, start: int, end: int) -> tuple[int, int]:
    """``text[start:end]`` without spaces and punctuation at its edges."""
    piece = text[start:end]
    lead = len(piece) - len(piece.lstrip(EDGE))
    start += lead
    return start, start + len(piece[lead:].rstrip(EDGE + "."))
