"""Dates written in words, weekdays, months of a year, and ages over 89.

HIPAA's Safe Harbor method removes every element of a date but the year, and every age over
89 (ages of 90 or more are one category): "the third of July", "July 3rd", "3 July", "in
March", "07/2021", "on Tuesday", "last Friday", "03-JUL-2021"; "93-year-old", "aged 95",
"age: 101", "in her 90s", "her 95th birthday", "a nonagenarian". Numeric and ISO dates and
"July 3, 2021" are the ``date_*`` patterns of ``detect.patterns``.

Each regex starts with what is rarest in text (a capitalised month or weekday, a number from
90 to 125, a ``/`` before a year) and looks at the words before it afterwards
(``text_pattern.before``), which keeps the scan of a batch cheap; the words that make a month a
date ("3", "third of", "in", "since") or a number an age ("aged", "age:") are checked there.
"""

from __future__ import annotations

import re

from veilflow.detect.patterns import MONTH
from veilflow.detect.text_pattern import TextPattern, before

ORDINAL = (
    r"(?:first|second|third|fourth|fifth|sixth|seventh|eighth|ninth|tenth|eleventh|twelfth|"
    r"thirteenth|fourteenth|fifteenth|sixteenth|seventeenth|eighteenth|nineteenth|"
    r"twentieth|thirtieth|(?:twenty|thirty)[- ]?(?:first|second|third|fourth|fifth|sixth|"
    r"seventh|eighth|ninth))"
)
WEEKDAY = r"(?:Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|Sunday)"
_WEEKDAY_SHORT = r"(?:Mon|Tues?|Wed|Thu(?:rs?)?|Fri|Sat|Sun)"
_MONTHS_SHORT = "Jan Feb Mar Apr May Jun Jul Aug Sep Sept Oct Nov Dec".split()
#: 03-JUL-2021 writes the month in capitals too (in lower case, "03jul2021" is rare and
#: "jan", "mar", "may" start too many words to look at each).
_MONTH_CASES = "|".join(f"{m}|{m.upper()}" for m in _MONTHS_SHORT)

# --- a month in words ------------------------------------------------------------------------

#: What makes a capitalised month name a date when it stands before it.
_MONTH_LEAD = re.compile(
    rf"(?:\b(?:(?i:{ORDINAL})|\d{{1,2}}(?:st|nd|rd|th))\s+(?:(?i:day)\s+)?(?i:of)\s+"
    r"|(?<![\d.,:/-])\b\d{1,2}(?:st|nd|rd|th)?\s+"
    r"|\b(?i:in|since|until|till|during|throughout|early|late|mid|end of|beginning of|"
    r"start of|middle of|last|next|this|coming|past)[ -]+)$"
)
_ORDINAL_WORD = re.compile(rf"(?i:{ORDINAL})\b")


def _month(m: re.Match[str], text: str) -> tuple[int, int, float] | None:
    """A month name is a date with a day or ordinal before or after it ("3 July", "the
    third of July", "July the third"), a year after "of" ("July of 2021"), or a preposition
    of time before it ("in March", "since mid-June"); "May" and "March" alone are words."""
    start, end = m.start(), m.end()
    lead = before(_MONTH_LEAD, text, start)
    day = lead is not None and (
        lead.group()[:1].isdigit() or bool(_ORDINAL_WORD.match(lead.group()))
    )
    if lead is None and not (m.group("ordinal") or m.group("of_year")):
        return None
    if day and lead is not None:
        start = lead.start()  # "3 July", "third of July": the day with its month
    # "in March" is a month; with a day or a year it is a date.
    return start, end, 0.85 if day or m.group("ordinal") or m.group("of_year") else 0.6


_DAY_BEFORE = re.compile(r"(?<![\w.:/-])\d{1,2}[- ]?$")
_DAY_YEAR_AFTER = re.compile(r"[- ]?(?:\d{4}|\d{2})(?![\w-])|-\d{1,2}-(?:\d{4}|\d{2})(?![\w-])")


def _clinical(m: re.Match[str], text: str) -> tuple[int, int, float] | None:
    """03-JUL-2021, 3-Jul-21, 03JUL2021, Jul-03-2021."""
    start, end = m.start(), m.end()
    after = _DAY_YEAR_AFTER.match(text, end)
    if after is None:
        return None
    day = before(_DAY_BEFORE, text, start, 4)
    dashes = after.group().count("-")
    if day is not None and dashes < 2:
        return day.start(), after.end(), 0.8
    if day is None and dashes == 2 and not (start and text[start - 1].isalnum()):
        return start, after.end(), 0.8  # Jul-03-2021
    return None


def _month_year(m: re.Match[str], text: str) -> tuple[int, int, float] | None:
    """07/2021 and 2021-07: a month of a year, found from its ``/`` or ``-``."""
    end = m.end()
    if end < len(text) and (text[end].isalnum() or text[end] in "/" or _DECIMAL.match(text, end)):
        return None
    if m.group().startswith("/"):
        lead = before(_MONTH_NUMBER, text, m.start(), 3)
        return None if lead is None else (lead.start(), end, 0.6)
    year = before(_YEAR, text, m.start(), 5)
    if year is None or (text[end : end + 1] == "-" and text[end + 1 : end + 2].isdigit()):
        return None  # 2021-07-03 is the ISO date pattern's
    return year.start(), end, 0.6


_YEAR = re.compile(r"(?<![\w/.-])(?:19|20)\d\d$")
_MONTH_NUMBER = re.compile(r"(?<![\w/.-])(?:0?[1-9]|1[0-2])$")
_WHEN = re.compile(r"\b(?i:last|next|this|coming|past|previous)\s+$")


def _weekday(m: re.Match[str], text: str) -> tuple[int, int, float] | None:
    """A weekday, with "last", "next", "this" ... before it; an abbreviation only before a
    date ("Tue 3 July", "Fri, 12/03")."""
    start = m.start()
    if start and text[start - 1].isalnum():
        return None
    when = before(_WHEN, text, start, 12)
    return (when.start() if when else start), m.end(), 0.7


# --- ages over 89 ----------------------------------------------------------------------------

_AGE_AFTER = re.compile(
    r"(?:[- ]?(?i:years?|yrs?|yr)[- ]?(?i:old|of[ ]age)\b"
    r"|[- ]?(?i:y/o|y\.o\.|yo|yof|yom)(?![\w/])"
    r"|(?i:st|nd|rd|th)[ ](?i:birthday)\b"
    r"|'?s\b)"
)
_AGE_BEFORE = re.compile(
    r"\b(?i:aged?|age[ ]?[:=]|at[ ]the[ ]age[ ]of|turned|turning|age[ ]is)\s*[:=]?\s*$"
)
_DECADE_BEFORE = re.compile(r"\b(?i:in[ ](?:his|her|their)[ ](?:early[ ]|mid[ -]?|late[ ])?)$")
_NOT_AN_AGE = re.compile(
    r"\s*(?:%|(?:days?|weeks?|wks?|months?|mos?|hours?|hrs?|minutes?|mins?|seconds?|percent|"
    r"mg|kg|lbs?|cm|mm|ml|bpm)\b)",
    re.IGNORECASE,
)
_DECIMAL = re.compile(r"[.,]\d")


def _age(m: re.Match[str], text: str) -> tuple[int, int, float] | None:
    """A number from 90 to 125 that is someone's age: "93-year-old", "93 y/o", "95th
    birthday", "aged 95", "age: 101", "in her 90s"; not "aged 95 days" (a cheese)."""
    start, end = m.start(), m.end()
    if start and (text[start - 1].isalnum() or text[start - 1] in ".,"):
        return None
    if end < len(text) and text[end].isdigit():
        return None  # pragma: no cover - the regex stops at a digit
    after = _AGE_AFTER.match(text, end)
    if after is not None:
        if after.group().endswith("s") and "year" not in after.group().lower():
            # "in her 90s": a decade of life; "the 90s" is a decade of the century.
            if before(_DECADE_BEFORE, text, start, 30) is None:
                return None
            return start, after.end(), 0.85
        return start, end, 0.85
    if (
        before(_AGE_BEFORE, text, start, 24) is not None
        and not _NOT_AN_AGE.match(text, end)
        and not _DECIMAL.match(text, end)
    ):
        return start, end, 0.85
    return None


_AGE_WORD = re.compile(r"(?i:nonage|(?:super)?cente|ni)$")


def _age_word(m: re.Match[str], text: str) -> tuple[int, int, float] | None:
    """A nonagenarian or centenarian (found from the word's ending, read back here); the
    nineties only as a decade of someone's life ("in her nineties")."""
    head = before(_AGE_WORD, text, m.start(), 10)
    if head is None or (head.start() and text[head.start() - 1].isalpha()):
        return None
    if m.group().startswith("neties") and before(_DECADE_BEFORE, text, head.start(), 30) is None:
        return None
    return head.start(), m.end(), 0.85


DATE_PATTERNS: tuple[TextPattern, ...] = (
    TextPattern(
        # the third of July / 3 July / 3rd of July 2021 / July the third / in March
        "date_month_words",
        "DATE_TIME",
        re.compile(
            rf"{MONTH}\b\.?(?:(?P<of_year>\s+of\s+\d{{4}}\b)"
            rf"|(?P<ordinal>\s+(?:the\s+)?(?i:{ORDINAL})\b)?(?:,?\s+\d{{4}}\b)?)"
        ),
        0.85,
        _month,
    ),
    TextPattern(
        # 03-JUL-2021, 03JUL2021, Jul-03-2021
        "date_clinical",
        "DATE_TIME",
        re.compile(rf"(?:{_MONTH_CASES})(?=[- ]?\d)"),
        0.8,
        _clinical,
    ),
    TextPattern(
        # 07/2021, 2021-07
        "date_month_year",
        "DATE_TIME",
        re.compile(r"/(?:19|20)\d\d|-(?:0[1-9]|1[0-2])"),
        0.6,
        _month_year,
    ),
    TextPattern(
        # Tuesday, last Friday, next Monday
        "weekday",
        "DATE_TIME",
        re.compile(rf"{WEEKDAY}\b"),
        0.7,
        _weekday,
    ),
    TextPattern(
        # Tue 3 July, Fri, 12/03
        "weekday_short",
        "DATE_TIME",
        re.compile(rf"{_WEEKDAY_SHORT}\b\.?(?=,?\s+(?:\d|{MONTH}))"),
        0.7,
        _weekday,
    ),
    TextPattern(
        "age_over_89",
        "AGE_OVER_89",
        re.compile(r"(?:9\d|1[01]\d|12[0-5])(?!\d)"),
        0.85,
        _age,
    ),
    TextPattern(
        "age_words",
        "AGE_OVER_89",
        re.compile(r"narians?\b|neties\b"),
        0.85,
        _age_word,
    ),
)
