"""What a statistical model's finding must look like to be reported: spaCy's stock NER
(``ner_span``) and the project's trained detector (``learned_span``) are held to the same
shapes: edges trimmed, lead role words and a possessive cut from a name, codes and
dictionary words refused, an identifier held to the evidence a rule's would need.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from veilflow.detect.gazetteers import AMBIGUOUS_GIVEN, NOT_NAME
from veilflow.detect.identifiers import identifier_phrases
from veilflow.detect.patterns import MONTH
from veilflow.detect.spans import EDGE as _EDGE
from veilflow.detect.vocabulary import Vocabulary

#: spaCy label → entity, with the score Presidio gives spaCy findings.
NER_LABELS: dict[str, str] = {
    "PERSON": "PERSON",
    "GPE": "LOCATION",
    "LOC": "LOCATION",
    "FAC": "LOCATION",
    "DATE": "DATE_TIME",
    "TIME": "DATE_TIME",
}
NER_SCORE = 0.85

#: A spaCy DATE/TIME is personal data only with a concrete date or time in it.
_DATE_EVIDENCE = re.compile(
    rf"\b{MONTH}\.?\s+\d|\d\s+{MONTH}\b|\b\d{{1,4}}[-/.]\d{{1,2}}[-/.]\d{{1,4}}\b|"
    r"\b(?:19|20)\d\d\b|\b\d{1,2}:\d\d\b|\b\d{1,2}\s?(?:am|pm|a\.m\.|p\.m\.)"
)
#: What no finding of the trained detector runs across: a line break, a " | " separator, the
#: end of a sentence.
_LINE_BREAK = re.compile(
    r"[ \t]*(?:\r?\n|[ \t]\|[ \t])[ \t]*"
    # a sentence's end: a small word of four letters or more, a full stop, a capital ("physio.
    # Khristo walked"); "St. Kilda", "Dr. Lee" and "Apt. 4" are abbreviations, not ends
    r"|(?<=[a-z]{4}\.)[ \t]+(?=[^\W\d_a-z])"
)
_LEAD_ROLES = re.compile(
    r"^(?:(?:Patient|Client|Customer|Agent|Caller|User|Member|Dear|Hi|Hello|"
    r"Hey|Thanks|Contact|Name|Attn|Employee|Tenant|Owner|Applicant|Driver|"
    r"Mr|Mrs|Ms|Dr)\.?[ ,:]+)+"
)
_ID_PREFIX = re.compile(r"([A-Za-z]{2,6})[-#:]?\d")
#: Detector entities taken as found once trimmed (their shapes vary too much to check).
_FREE_ENTITIES = frozenset({"DATE_TIME", "AGE_OVER_89"})
_FIRST_WORD = re.compile(r"([^\W\d_][\w'’-]*)\s+(?=\S)")
_NAME_WORDS = re.compile(r"[^\W\d_][\w'’-]*")
_LAST_SMALL_WORD = re.compile(r"[ \t]+([a-z]+)$")

#: A unit of measure, and with a decimal number or a distance ("walked 32 m") what a lab
#: value or a measurement has and a place never has.
_UNIT = re.compile(r"\b(?i:mmol|µmol|umol|mg|mcg|ml|dl|g/l|g/dl|mmhg|bpm|iu|kg|°c|°f)\b|%")
_MEASURE = re.compile(rf"\d[.,]\d|{_UNIT.pattern}|\d[ ]?(?:m|km|cm|mm|ft|mi|yd)\b")
#: Digits of a phone number set apart as phones are: "+45 1234 5678", "(030) 12345",
#: "0812345678", or eight or more of them ("46244845": Danish and Norwegian numbers); a
#: bare run of seven is more often a reference or an order number.
_PHONE_SHAPE = re.compile(r"^(?:\+|00|\(|0\d{8})|\d[ ./-]+\d")


def _without_role_and_possessive(text: str, start: int, end: int) -> tuple[int, int, str]:
    """A name span without the role words before it ("Dr.", "Patient:") and a possessive
    after it ("'s")."""
    lead = _LEAD_ROLES.match(text)
    if lead:
        start, text = start + lead.end(), text[lead.end() :]
    if text.endswith(("'s", "’s")):
        end, text = end - 2, text[:-2]
    return start, end, text


def ner_span(text: str, start: int, end: int, entity: str) -> tuple[int, int] | None:
    """A stock NER span as reported (narrowed), or None: a date needs a concrete date or
    time in it; a name or place starts with a capital (after "the "), holds no digit or
    ``@/#``, and a name loses lead role words and a possessive."""
    if entity == "DATE_TIME":
        return (start, end) if _DATE_EVIDENCE.search(text) else None
    if not text[:1].isupper() and not text[:1].isdigit():
        if text.lower().startswith("the "):
            start, text = start + 4, text[4:]
        if not text[:1].isupper():
            return None
    if any(c.isdigit() or c in "@/\\#" for c in text):
        return None  # codes and references, not names or places
    if entity == "PERSON":
        start, end, text = _without_role_and_possessive(text, start, end)
    if not text or text in NOT_NAME or len(text) < 2:
        return None
    return start, end


def learned_span(
    text: str, start: int, end: int, entity: str, vocabulary: Vocabulary
) -> tuple[int, int] | None:
    """A detector span held to what the stock NER's findings are held to, or None:
    edges trimmed of spaces and punctuation; an identifier needs 5+ characters with 2+
    digits (an e-mail its ``@``, a URL a dot), so "ticket 10" holds none; a name or place
    loses lead role words, a possessive and, for a name, capitalised dictionary words
    before it that the name lists do not hold ("Yesterday"); a name with a digit or
    ``@/#`` is a code, and a name or place made only of dictionary words the lists do not
    hold ("Target", no house number) is not reported."""
    lead_cut = len(text) - len(text.lstrip(_EDGE))
    start, text = start + lead_cut, text[lead_cut:]
    tail = text.rstrip(_EDGE + ".")
    end, text = end - (len(text) - len(tail)), tail
    if len(text) < 2:
        return None
    if entity in _FREE_ENTITIES:
        if entity == "AGE_OVER_89" and not text.isdigit():
            return None
        if _UNIT.search(text):
            return None  # "HbA1c 8.2%": a lab value, not a date
        return start, end
    if entity not in ("PERSON", "LOCATION"):
        if entity == "EMAIL_ADDRESS":
            ok = "@" in text
        elif entity == "URL":
            ok = "." in text or "/" in text
        elif entity == "PHONE_NUMBER":
            ok = _phone_shaped(text)
        else:
            ok = len(text) >= 5 and sum(c.isdigit() for c in text) >= 2
        return (start, end) if ok else None
    if entity == "PERSON":
        start, end, text = _without_role_and_possessive(text, start, end)
        if any(c.isdigit() or c in "@/\\#" for c in text):
            return None
        while True:
            m = _FIRST_WORD.match(text)
            if m is None or not vocabulary.plain_word(m.group(1)):
                break
            start, text = start + m.end(), text[m.end() :]
        given = vocabulary.given
        if vocabulary.words and all(
            w not in given and w not in AMBIGUOUS_GIVEN and vocabulary.is_word(w.lower())
            for w in _NAME_WORDS.findall(text)
        ):
            return None  # "Good morning", "What": English words, no given name among them
    elif _MEASURE.search(text):
        return None  # "K+ 4.9 mmol/L": a measurement, not an address
    if not text.islower():
        # A name or place ends in no small English word: "Enitsa Stoikov grew", "Lindseymouth
        # pending" (a line typed in lower case aside).
        while (m := _LAST_SMALL_WORD.search(text)) and vocabulary.is_word(m.group(1)):
            text = text[: m.start()].rstrip(_EDGE)
            end = start + len(text)
    if len(text) < 2 or text in NOT_NAME:
        return None
    if not any(c.isdigit() for c in text) and all(
        vocabulary.plain_word(w) for w in _NAME_WORDS.findall(text)
    ):
        return None  # an address has its house number; a bare word is a word
    return start, end


_LETTERS = re.compile(r"[^\W\d_]{2,}")


def small_words(text: str, start: int, end: int) -> bool:
    """Whether ``text[start:end]`` is written in small letters, not opening with a house
    number, on a line that writes with capitals: no name or place there, whatever a model
    makes of it ("Medication list confirmed: amlodipine 5 mg", "Gjorche: nope"); "379, rue"
    is an address, and a line typed in lower case writes its names so ("ana: im in
    berlin")."""
    piece = text[start:end]
    return piece.islower() and not piece[0].isdigit() and not typed_in_lower_case(text, start)


def typed_in_lower_case(text: str, start: int) -> bool:
    """Whether the line holding ``start`` is typed without capitals (codes aside): only there
    is a model's name or place in lower case one ("ana: im in berlin"); on a line that writes
    names with capitals, a lower-case span is a word ("Medication list confirmed: amlodipine",
    "Gjorche: nope")."""
    line_start = text.rfind("\n", 0, start) + 1
    line_end = text.find("\n", start)
    line = text[line_start : line_end if line_end >= 0 else len(text)]
    # A capital then small letters ("Medication", "Ana"); codes ("DE89") and acronyms aside.
    return not any(w[0].isupper() and w[1].islower() for w in _LETTERS.findall(line))


def within_lines(text: str, start: int, end: int) -> Iterator[tuple[int, int]]:
    """A detector span cut at line breaks, " | " field separators and sentence ends: no
    name, place or identifier runs across them ("... 72166 Bakar | Recipient: Mubina
    Yunusov, ...", "physio. Khristo walked")."""
    for m in _LINE_BREAK.finditer(text, start, end):
        yield start, m.start()
        start = m.end()
    yield start, end


def named_nearby(text: str, start: int, end: int) -> bool:
    """Whether a context word of the identifier entities stands in or just before
    ``text[start:end]`` ("MRN1234567", "chart no. 44-1932"): a detector identifier needs the
    evidence a rule's would, so "Order #437991" is no record number."""
    trigger, _ = identifier_phrases()
    if trigger.search(text[max(0, start - 40) : start].lower()):
        return True
    joined = _ID_PREFIX.match(text, start, end)
    return joined is not None and trigger.fullmatch(joined.group(1).lower()) is not None


def _phone_shaped(text: str) -> bool:
    digits = sum(c.isdigit() for c in text)
    return 7 <= digits <= 15 and (_PHONE_SHAPE.search(text) is not None or digits >= 8)
