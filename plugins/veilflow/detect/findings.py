"""Which of one text's candidate findings are reported: findings under their entity's
threshold, on the allow list or over what a rule found are dropped, what is left is
resolved into non-overlapping spans, and a place joins the postcode right next to it.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from veilflow.detect.identifiers import card_grouped
from veilflow.detect.spans import Span, resolve
from veilflow.detect.vocabulary import Vocabulary

#: Sources of statistical findings: spaCy's stock NER and the project's trained detector.
_LEARNED = frozenset({"ner", "model"})

_ADDRESS_GAP = re.compile(r"[ ]?,?[ ]{1,2}|[ ]*\n[ ]*")


def keep_findings(
    text: str,
    cands: list[Span],
    threshold: Callable[[str], float],
    allow: set[str],
    vocabulary: Vocabulary,
) -> list[Span]:
    """The spans reported for ``text`` out of its candidate findings ``cands``; ``allow``
    holds the allow list's terms, case-folded."""
    kept: list[Span] = []
    # A name guess that a place rule (street address, postcode + city, country) calls a
    # place is a place: "28813 Derek Drive", "45923 Rastatt".
    places = [
        (c.start, c.end)
        for c in cands
        if c.entity == "LOCATION"
        and c.score >= 0.8
        and (
            c.source == "places"
            # the detector's postal address (it has a number): "Avda. Isidora Martínez 52"
            or (c.source == "model" and any(ch.isdigit() for ch in text[c.start : c.end]))
        )
    ]
    # A weekday or date the patterns found is not a name the NER model saw in it ("Fri").
    dates = [
        (c.start, c.end)
        for c in cands
        if c.entity == "DATE_TIME" and c.source != "ner" and c.score >= threshold(c.entity)
    ]
    # The trained detector fills what the rules leave: where a pattern or rule found
    # another entity, a checksum, a context word or a list stands behind it, and the
    # model's guess over it does not take it away (same-entity findings still merge).
    ruled = [
        (c.start, c.end, c.entity)
        for c in cands
        if c.source not in _LEARNED and c.score >= threshold(c.entity)
    ]
    # A number its context word names ("MRN 564751016-564") is that identifier, not a
    # card that passes Luhn by chance, unless it is grouped the way cards are printed.
    named = [(c.start, c.end) for c in cands if c.source == "context_id"]
    for c in cands:
        if c.score < threshold(c.entity):
            continue
        if (
            c.entity == "CREDIT_CARD"
            and any(s <= c.start and c.end <= e for s, e in named)
            and not card_grouped(text[c.start : c.end])
        ):
            continue
        if c.source == "model" and any(
            s < c.end and c.start < e and entity != c.entity for s, e, entity in ruled
        ):
            continue
        if (
            c.source in _LEARNED
            and c.entity != "DATE_TIME"
            and any(s <= c.start and c.end <= e for s, e in dates)
        ):
            continue
        if allow and text[c.start : c.end].strip().casefold() in allow:
            continue
        if c.source == "names" and c.score < 0.6 and vocabulary.sentence_word(text, c.start, c.end):
            continue
        if (c.entity == "ZIP_CODE" or c.source in _LEARNED) and any(
            s <= c.start and c.end <= e and e - s > c.end - c.start for s, e in places
        ):
            # A postcode inside a postal address is part of it, and so is what the NER
            # model makes of its pieces ("NSW 2000" as a date).
            continue
        if (
            c.entity == "PERSON"
            and c.score < 0.9
            and any(
                s < c.end
                and c.start < e
                and not (c.start <= s and e <= c.end and e - s < c.end - c.start)
                for s, e in places
            )
        ):
            # ... unless the place is only one word of the name: "Virginia Campbell",
            # "Rose Jordan" are people whatever the place lists say.
            continue
        kept.append(c)
    return _join_addresses(text, resolve(kept))


def _join_addresses(text: str, spans: list[Span]) -> list[Span]:
    """A place and the postcode right next to it are one address ("London NW1 6XE",
    "10115 Berlin"): the postcode joins the place's LOCATION span."""
    if len(spans) < 2:
        return spans
    out: list[Span] = []
    for s in spans:
        last = out[-1] if out else None
        if (
            last is not None
            and {last.entity, s.entity} == {"LOCATION", "ZIP_CODE"}
            and _ADDRESS_GAP.fullmatch(text, last.end, s.start)
        ):
            out[-1] = Span(last.start, s.end, "LOCATION", max(last.score, s.score), last.source)
        else:
            out.append(s)
    return out
