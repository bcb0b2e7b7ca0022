"""PERSON and LOCATION rules that complement the statistical NER model.

The small spaCy model misses many names and most place names in short, template-like
text. These rules find them from given-name/surname lists, titles, greetings, street
address shapes, "City, ST" pairs and place-name shapes, each with its own score so that
per-entity thresholds keep control of precision. This module holds the PERSON rules
(``find_names``) and offers the LOCATION rules of ``veilflow.detect.places`` beside them.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from veilflow.detect.gazetteers import (
    AMBIGUOUS_GIVEN,
    NOT_NAME,
    PARTICLES,
    TITLES,
    gazetteers,
)
from veilflow.detect.places import CAPITAL, WORD, find_places

__all__ = ["find_names", "find_places"]

_INITIAL = CAPITAL + r"\."
_TOKEN = rf"(?:{WORD}|{_INITIAL})"
_PART = "|".join(PARTICLES)
#: Runs of capitalised words (with name particles and initials) on one line.
RUN = re.compile(rf"(?<![\w@.'’-]){_TOKEN}(?:[ ](?:(?:{_PART})[ ])*{_TOKEN})*")
_TOK = re.compile(rf"{_TOKEN}|\b(?:{_PART})\b")
_GREETING = re.compile(
    r"(?:\b(?:hi|hello|hey|dear|thanks|thank you|regards|cheers|best|sincerely|from|by|to|cc|"
    r"with|ask|asked|told|tell|contact|contacted|call|called|spoke to|spoke with|signed|attn|"
    r"patient|customer|client|agent|caller|user|member|colleague|manager|doctor|nurse|"
    r"mother|father|wife|husband|son|daughter|name is|named|is|i'm|i am|this is)[,:]?\s*)$",
    re.IGNORECASE,
)
#: Words after which a run of capitalised words is a person's name even when the name
#: lists do not know it ("spoke with Aaro Mäkelä", "beneficiary Jindřich Horáček").
_PERSON_CONTEXT = re.compile(
    r"(?:\b(?:with|by|for|beneficiary|payee|cardholder|account holder|holder|customer|client|"
    r"patient|contact|caller|applicant|tenant|employee|recipient|sender|escalated to|assigned to|"
    r"forwarded to|transferred to|referred to|talk to|spoke to|speak to|write to|ship to|"
    r"deliver to|attn|dear|hi|hello|thanks|regards|from|name|named|signed|mr|mrs|ms|dr)"
    r"[.,:]?[ ]*)$",
    re.IGNORECASE,
)
_SENTENCE_START = re.compile(r"(?:^|[.!?:;\n]\s*|\x00\s*)$")
_POSSESSIVE = re.compile(r"['’]s$")
_ROLE_WORDS = frozenset(
    {
        "Patient",
        "Client",
        "Customer",
        "Agent",
        "Caller",
        "User",
        "Member",
        "Colleague",
        "Manager",
        "Doctor",
        "Nurse",
        "Contact",
        "Attn",
        "Name",
        "Employee",
        "Tenant",
        "Owner",
        "Applicant",
        "Driver",
    }
)


def _title_re() -> re.Pattern[str]:
    # Titles in any case ("dr Björklund" in shorthand notes); the name stays capitalised.
    titles = "|".join(f"(?i:{t})" for t in TITLES)
    return re.compile(
        rf"\b(?:{titles})\.?[ ]+(?:(?:{_PART})[ ])*{_TOKEN}"
        rf"(?:[ ](?:(?:{_PART})[ ])*{_TOKEN}){{0,2}}"
    )


#: A single capitalised word after these is a name even when no list knows it.
_STRONG_PERSON_CONTEXT = re.compile(
    r"(?:\b(?:signed by|dear|hi|hello|hey|thanks|thank you|regards|cheers|attn|"
    r"my name is|this is|i am|i'm)[,:]?[ ]*)$",
    re.IGNORECASE,
)


TITLE = _title_re()


def find_names(text: str) -> Iterator[tuple[int, int, float]]:
    """PERSON candidates: titles, given name + capitalised words, greeting + given name,
    capitalised word + known surname."""
    g = gazetteers()
    given, surnames = g.given, g.surnames
    street = set(g.street_suffixes)
    for m in TITLE.finditer(text):
        yield m.start(), _trim_possessive(text, m.start(), m.end()), 0.9
    for run in RUN.finditer(text):
        toks = [(t.group(), t.start() + run.start()) for t in _TOK.finditer(run.group())]
        i = 0
        while i < len(toks):
            word, start = toks[i]
            base = _POSSESSIVE.sub("", word)
            if base in _MONTH_GIVEN and i + 1 < len(toks):
                # "April Parker": a month that is also a given name, before a surname and
                # not before a day number ("May 5"), is a name.
                nxt, nstart = toks[i + 1]
                end = nstart + len(nxt)
                if (
                    nxt in surnames
                    and nxt not in NOT_NAME
                    and nxt not in given
                    and not _DIGIT_NEXT.match(text, end)
                ):
                    yield start, _trim_possessive(text, start, end), 0.75
                    i += 2
                    continue
            if base in NOT_NAME or base in _ROLE_WORDS or base.lower() in PARTICLES:
                i += 1
                continue
            j = i + 1
            while j < len(toks) and j - i < 4:
                nxt = _POSSESSIVE.sub("", toks[j][0])
                if (
                    j == i + 1
                    and j + 1 == len(toks)
                    and (
                        base in given
                        or (
                            base in AMBIGUOUS_GIVEN
                            and _PERSON_CONTEXT.search(text[max(0, start - 24) : start])
                        )
                    )
                    and ((nxt in street and nxt in surnames) or nxt in _WORD_SURNAMES)
                    and not _DIGIT_NEXT.match(text, toks[j][1] + len(toks[j][0]))
                ):
                    j += 1  # "Teresa Park", "Tina Best": a surname, not a street or sign-off
                    break
                if nxt in NOT_NAME or nxt in street or nxt in _ROLE_WORDS:
                    break
                j += 1
                if nxt != toks[j - 1][0]:
                    break  # a possessive ends the name
            # Drop trailing particles ("Anna de"); capitalised, they are surnames ("Kim Le").
            while j - 1 > i and toks[j - 1][0] in PARTICLES:
                j -= 1
            end = toks[j - 1][1] + len(toks[j - 1][0])
            end = _trim_possessive(text, start, end)
            before = text[max(0, start - 24) : start]
            numbered = bool(re.search(r"\d[\w]*[ ,]*$", before))
            if numbered:  # "743 Austin Field": a house number, not a person
                i = j
                continue
            n = j - i
            if n == 1 and re.match(r"[ .]*\d", text[end : end + 3]):
                i = j
                continue  # "Jan 05", "May 2024": a date, not a name
            last = _POSSESSIVE.sub("", toks[j - 1][0])
            if base in given:
                if n >= 2:
                    score = 0.9 if last in surnames else 0.8
                elif _GREETING.search(before):
                    score = 0.75
                else:
                    score = 0.55 if _SENTENCE_START.search(before) else 0.6
                yield start, end, score
            elif base in AMBIGUOUS_GIVEN and n >= 2 and last in surnames:
                yield start, end, 0.75
            elif n >= 2 and last in surnames and last not in given:
                score = 0.5 if _SENTENCE_START.search(before) else 0.65
                if _GREETING.search(before) or _PERSON_CONTEXT.search(before):
                    score = 0.75
                yield start, end, score
            elif (2 <= n <= 4 and _PERSON_CONTEXT.search(before) and _name_like(toks[i:j])) or (
                2 <= n <= 4 and _EMAIL_NEXT.match(text, end) and _name_like(toks[i:j])
            ):
                yield start, end, 0.7
            elif n == 1 and base in surnames and _GREETING.search(before) and len(base) > 2:
                yield start, end, 0.55
            elif (
                n == 1
                and len(base) > 2
                and _STRONG_PERSON_CONTEXT.search(before)
                and (_name_like(toks[i:j]))
            ):
                yield start, end, 0.6
            i = j


#: Month names that are also given names; a surname right after makes them a name.
_MONTH_GIVEN = frozenset({"April", "May", "June", "August"})
#: Surnames that the name rules otherwise stop at (sign-offs, months).
_WORD_SURNAMES = frozenset({"Best", "Case", "May"})
_DIGIT_NEXT = re.compile(r"[ ,.]*\d")
_EMAIL_NEXT = re.compile(r"[ ]?<[^>\s]+@|[ ]?\([^)\s]*\d")


def _name_like(toks: list[tuple[str, int]]) -> bool:
    """Capitalised words that could be a name: letters only, not shouting, not a place."""
    for word, _ in toks:
        if word.lower() in PARTICLES:
            continue
        if (
            not word[0].isupper()
            or (word.isupper() and len(word) > 1)
            or any(ch.isdigit() for ch in word)
        ):
            return False
    return True


def _trim_possessive(text: str, start: int, end: int) -> int:
    if end - start > 2 and text[end - 2 : end] in ("'s", "’s"):
        return end - 2
    return end


# --- places -------------------------------------------------------------------------------
