"""Which of one text's candidate findings are reported: findings under their entity's
threshold, on the allow list or over what a rule found are dropped, what is left is
resolved into non-overlapping spans, and a place joins the postcode right next to it.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from veilflow.detect.identifiers import card_grouped
from veilflow.detect.roles import name_shaped, person_role
from veilflow.detect.spans import Span, resolve, without_edges
from veilflow.detect.vocabulary import Vocabulary

#: Sources of statistical findings: spaCy's stock NER and the project's trained detector.
_LEARNED = frozenset({"ner", "model"})

_WORDS = re.compile(r"[^\W\d_][\w'’-]*")
_AND = re.compile(r"[ \t]+(?:and|&)[ \t]+")

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
    found = {(c.start, c.end, c.entity) for c in kept}
    return _join_addresses(text, _whole_words(text, resolve(kept), found, vocabulary))


def _whole_words(
    text: str, spans: list[Span], found: set[tuple[int, int, str]], vocabulary: Vocabulary
) -> list[Span]:
    """A model's name or place that resolution cut keeps what still reads as one: what is
    left of "Ana Lima's" or "Oslo trip, " beside the rules' name or place ("'s", ", ",
    " trip": no letter, or small dictionary words and no digit) is none; "379, rue" of an
    address, or a capitalised rest ("am See" of "Zell am See") stays, as it may still be the
    place's, unless the words around it say a person (``roles``). A span as a model found
    it is left as it was held to be (``learned_spans``). A model's place shaped like a name
    right after "<a name> and" is a name too: the two are of one kind ("Ana Lima and Koray
    Ulu")."""
    out: list[Span] = []
    for s in spans:
        last = out[-1] if out else None
        if (
            last is not None
            and last.entity == "PERSON"
            and s.entity == "LOCATION"
            and s.source in _LEARNED
            and _AND.fullmatch(text, last.end, s.start)
            and name_shaped(text, s.start, s.end)
        ):
            s = Span(s.start, s.end, "PERSON", s.score, s.source)  # "Ana Lima and Koray Ulu"
        if (
            s.source in _LEARNED
            and s.entity in ("PERSON", "LOCATION")
            and (s.start, s.end, s.entity) not in found
        ):
            start, end = without_edges(text, s.start, s.end)
            piece = text[start:end]
            if end - start < 2 or not any(ch.isalpha() for ch in piece):
                continue
            if (
                piece.islower()
                and not any(ch.isdigit() for ch in piece)
                and all(vocabulary.plain_word(w) for w in _WORDS.findall(piece))
            ):
                continue
            entity = s.entity
            if entity == "LOCATION" and person_role(text, start, end):
                entity = "PERSON"  # "Reporter: Delios" of "Delios, Aggeles" beside a name
            if (start, end, entity) != (s.start, s.end, s.entity):
                s = Span(start, end, entity, s.score, s.source)
        out.append(s)
    return out


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
