"""Identifiers named by the words before them, and a few with a format of their own.

A medical record, account, health-plan, licence, vehicle, device or biometric number has no
common format: what makes ``00482913`` a medical record number is the ``MRN:`` before it.
So these are found by context: an identifier-shaped token (at least 5 characters and 2
digits, letters and dashes allowed) standing right after a word that names it, with only
glue in between: punctuation (``:``, ``#``, ``-``) and a few words (``no``, ``number``,
``id``, ``is``, ``of``, ``template``, ``on file`` ...). A token is never a date, time,
version, decimal, fraction, ordinal or a number with a unit (``500mg``, ``65-year-old``).
Without its context word nothing is reported: the context is the evidence.

One regex finds every context word of the batch in a single pass; the glue and token are
then matched at each hit only, so the cost is one scan of the text plus a little per hit.

Formats that stand on their own are ``TextPattern`` recognizers (``SHAPED``): a VIN with a
valid check digit, a MAC address, a GS1 device identifier (``(01)`` + 14 digits) and the
Medicare beneficiary identifier's fixed letter/digit layout.
"""

from __future__ import annotations

import json
import re
import string
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from veilflow.detect.text_pattern import TextPattern, trie, words
from veilflow.transform.checksums import imei_ok, vin_ok


@dataclass(frozen=True)
class Context:
    """Words (lower case; ``upper`` ones count only in capitals: ``SN``, ``DL``) after which
    a token of ``kind`` is an ``entity``. ``kind`` is ``id`` (any identifier shape),
    ``plate``, ``vehicle`` (a VIN or a plate only), ``vin`` or ``imei``."""

    entity: str
    kind: str
    words: tuple[str, ...]
    upper: tuple[str, ...] = ()


CONTEXTS_FILE = Path(__file__).with_name("data") / "identifier_contexts.json"
_NUMBERED = (" no", " number", " id", " #", "#")


@lru_cache(maxsize=1)
def contexts() -> tuple[Context, ...]:
    """The context words of ``data/identifier_contexts.json`` (read once per process)."""
    raw = json.loads(CONTEXTS_FILE.read_text(encoding="utf-8"))
    return tuple(
        Context(
            c["entity"],
            c["kind"],
            tuple(c["words"]) + tuple(f"{s}{n}" for s in c.get("numbered", ()) for n in _NUMBERED),
            tuple(c.get("upper", ())),
        )
        for c in raw["contexts"]
    )


def identifier_phrases() -> tuple[re.Pattern[str], dict[str, tuple[Context, bool]]]:
    """The context-word regex (over lower-cased text) and what each phrase names."""
    return _phrases()


@lru_cache(maxsize=4096)
def _shorter(phrase: str) -> tuple[str, ...]:
    """The context phrases that ``phrase`` starts with and that end where a word of it ends
    ("serial" in "serial no"), longest first."""
    _, phrases = _phrases()
    return tuple(
        phrase[:cut]
        for cut in range(len(phrase) - 1, 0, -1)
        if phrase[cut] in " #" and phrase[:cut] in phrases and not phrases[phrase[:cut]][1]
    )


@lru_cache(maxsize=1)
def _phrases() -> tuple[re.Pattern[str], dict[str, tuple[Context, bool]]]:
    """One regex for every context phrase (over lower-cased text) and, per phrase, its
    context and whether it counts only in capitals."""
    phrases: dict[str, tuple[Context, bool]] = {}
    for c in contexts():
        for w in c.words:
            phrases.setdefault(w, (c, False))
        for w in c.upper:
            phrases.setdefault(w.lower(), (c, True))
    # A phrase ends at a word's end, or with its own punctuation ("chart #", "v.i.n.").
    rx = re.compile(f"(?<![a-z0-9/_])(?:{trie(sorted(phrases))})(?:(?<![a-z0-9])|(?![a-z0-9]))")
    return rx, phrases


_ASCII_LOWER = str.maketrans(string.ascii_uppercase, string.ascii_lowercase)

_GLUE_WORDS = (
    r"no|nr|num|number|id|identifier|code|ref|reference|is|was|of|on[ ]file|as|under|"
    r"stored|template|scan|hash|token|key|record|sample|value|enrolled|registered|reads?"
)
#: At most a few pieces of glue between the context word and the token; an underscore
#: joins a field name's words ("account_no: 4471093826").
_GLUE = (
    rf"(?:[ \t]+|[:#=]|_(?=[A-Za-z])|\.(?=[ \t#:=\w])|[-–](?=[ \t])|\((?=[\w#])|(?:{_GLUE_WORDS})\b)"
    r"{0,8}"
)
_UNITS = (
    r"mg|mcg|g|kg|ml|l|cm|mm|m|km|h|hr|hrs|min|mins|s|sec|ms|kb|mb|gb|tb|mah|v|w|kw|hz|khz|mhz|"
    r"ghz|lb|lbs|oz|ft|in|y|yo|yr|yrs|st|nd|rd|th|x|am|pm|bpm|mmhg|iu|units?|pcs|%"
)
_ID = (
    r"[A-Za-z0-9](?:[A-Za-z0-9]|[-/.](?=[A-Za-z0-9])){2,39}"
    # "MRN 123 456 789": digit groups after a digit, unless a unit follows ("100 mg").
    r"(?:(?<=\d)[ ]\d{3,6}(?![\w]|[.,/-]\d|[ ](?:" + _UNITS + r")\b))*"
)
_TOKENS = {
    "id": re.compile(rf"{_GLUE}(?P<t>{_ID})(?![\w@])", re.IGNORECASE),
    "plate": re.compile(
        rf"{_GLUE}(?P<t>(?-i:[A-Z0-9]{{1,4}}(?:[ -]?[A-Z0-9]{{1,4}}){{0,3}}))(?![\w@-])",
        re.IGNORECASE,
    ),
    "vin": re.compile(rf"{_GLUE}(?P<t>[A-HJ-NPR-Z0-9]{{17}})(?![\w@-])", re.IGNORECASE),
    "imei": re.compile(
        rf"{_GLUE}(?P<t>\d{{2}}[- ]?\d{{6}}[- ]?\d{{6}}[- ]?\d{{1,2}})(?![\w@-])", re.IGNORECASE
    ),
}

#: Tokens that are something else than an identifier.
_NOT_ID = re.compile(
    r"^(?:\d{1,4}[-/.]\d{1,2}[-/.]\d{1,4}"  # a date
    r"|\d{1,2}:\d{2}.*"  # a time
    r"|[vV]?\d+(?:\.\d+){1,3}"  # a version or a decimal
    r"|\d+/\d+"  # a fraction, a blood pressure
    r"|\d+(?:[.,]\d+)?(?:" + _UNITS + r")"  # a quantity
    r")$",
    re.IGNORECASE,
)
#: A part of a token that is a lower-case word ("65-year-old", "3-day"), not hex digits.
_WORD_PART = re.compile(r"(?:^|[-/.])(?=[a-z]*[g-z])[a-z]{3,}(?=$|[-/.])")
_DIGITS = re.compile(r"\d")
_LETTER = re.compile(r"[A-Za-z]")


def id_token_ok(token: str) -> bool:
    """Whether ``token`` has the shape of an identifier (5+ characters, 2+ digits) and is
    not a date, time, version, decimal, fraction or quantity."""
    return (
        len(token) >= 5
        and len(_DIGITS.findall(token)) >= 2
        and not _NOT_ID.match(token)
        and not _WORD_PART.search(token)
    )


def _plate(token: str, strict: bool) -> str | None:
    """The plate in ``token`` (trailing one- or two-letter words dropped: "7ABC123 IN"), or
    None: 4-10 letters and digits, at least one of each; ``strict`` (after "car", "truck")
    wants 5 or more with two of each, so that a model ("F-150", "BMW X5") is not a plate."""
    parts = token.split(" ")
    while len(parts) > 1 and parts[-1].isalpha() and len(parts[-1]) <= 2:
        parts.pop()
    plate = " ".join(parts)
    alnum = sum(ch.isalnum() for ch in plate)
    letters = len(_LETTER.findall(plate))
    digits = len(_DIGITS.findall(plate))
    least = 2 if strict else 1
    if not (5 if strict else 4) <= alnum <= 10 or letters < least or digits < least:
        return None
    return plate


def _token(kind: str, text: str, pos: int) -> tuple[int, int, float] | None:
    """The token after a context word of ``kind`` at ``pos``: (start, end, score) or None.
    After a VIN, IMEI or plate word any identifier shape is taken too (a partial VIN, an
    IMEI with a typo, a number plate of digits); after "car" or "truck" only a VIN or a
    plate is."""
    if kind in ("vin", "vehicle"):
        m = _TOKENS["vin"].match(text, pos)
        if m is not None:
            return m.start("t"), m.end("t"), 0.95 if vin_ok(m.group("t")) else 0.85
    if kind in ("plate", "vehicle"):
        m = _TOKENS["plate"].match(text, pos)
        plate = _plate(m.group("t"), kind == "vehicle") if m is not None else None
        if m is not None and plate:
            return m.start("t"), m.start("t") + len(plate), 0.8
        if kind == "vehicle":
            return None
    if kind == "imei":
        m = _TOKENS["imei"].match(text, pos)
        if m is not None and imei_ok(re.sub(r"\D", "", m.group("t"))[:15]):
            return m.start("t"), m.end("t"), 0.95
    m = _TOKENS["id"].match(text, pos)
    if m is None or not id_token_ok(m.group("t")):
        return None
    return m.start("t"), m.end("t"), 0.8


def find_identifiers(
    text: str, wanted: set[str] | None = None
) -> Iterator[tuple[int, int, float, str]]:
    """(start, end, score, entity) of every identifier named by a context word in ``text``
    (a batch joined with ``SEP``: no token crosses a text)."""
    low = text.lower()
    if len(low) != len(text):  # a few letters change length in lower case ("İ")
        low = text.translate(_ASCII_LOWER)
    trigger, phrases = _phrases()
    for m in trigger.finditer(low):
        start, phrase = m.start(), m.group()
        if start and low[start - 1].isalnum():
            continue  # a letter the lower-case text has that the lookbehind does not see
        ctx, upper = phrases[phrase]
        if upper and text[start : m.end()] != phrase.upper():
            continue
        if wanted is not None and ctx.entity not in wanted:
            continue
        found = _token(ctx.kind, text, m.end())
        if found is None:
            # "serial NO-700043": the longest phrase ("serial no") took the token's own
            # letters; a shorter phrase it starts with may name the whole token.
            for shorter in _shorter(phrase):
                ctx = phrases[shorter][0]
                found = _token(ctx.kind, text, start + len(shorter))
                if found is not None and (wanted is None or ctx.entity in wanted):
                    break
                found = None
        if found is not None:
            yield found[0], found[1], found[2], ctx.entity


#: How card numbers are printed: one run of digits, or a first group of four and groups of
#: three to six (4-4-4-4, Amex 4-6-5, Diners 4-6-4, 4-4-4-4-3).
_CARD_GROUPING = re.compile(r"\d+|\d{4}(?:[ -]\d{3,6})+")


def card_grouped(number: str) -> bool:
    """Whether a card-shaped ``number`` is grouped the way cards are printed; "564751016-564"
    is not, so after "MRN" it is the record number its context word says, not a card."""
    return _CARD_GROUPING.fullmatch(number) is not None


# --- formats that stand on their own ------------------------------------------------------


def _standalone(m: re.Match[str], text: str) -> bool:
    """Whether the match is a whole token: no letter, digit or dash joined to either end."""
    start, end = m.start(), m.end()
    return not (
        (start and (text[start - 1].isalnum() or text[start - 1] in "-_"))
        or (end < len(text) and (text[end].isalnum() or text[end] in "-_"))
    )


def _vin(m: re.Match[str], text: str) -> tuple[int, int, float] | None:
    vin = m.group()
    if not _standalone(m, text) or not vin_ok(vin) or not _LETTER.search(vin) or vin.isalpha():
        return None
    return m.start(), m.end(), 0.85


def _mac(m: re.Match[str], text: str) -> tuple[int, int, float] | None:
    """Found from its first separator (a leading literal keeps the scan cheap): the first
    group of hex digits is read back here (two, or four in ``0011.2233.4455``)."""
    start = m.start() - (4 if m.group().startswith(".") else 2)
    if start < 0 or not all(c in string.hexdigits for c in text[start : m.start()]):
        return None
    if start and (text[start - 1].isalnum() or text[start - 1] in ":.-"):
        return None
    end = m.end()
    if end < len(text) and (text[end].isalnum() or text[end] in ":-"):
        return None
    mac = text[start:end]
    if "-" in mac and not _LETTER.search(mac):
        return None  # digit groups with dashes are more often something else
    return start, end, 0.85


def _mbi(m: re.Match[str], text: str) -> tuple[int, int, float] | None:
    return (m.start(), m.end(), 0.7) if _standalone(m, text) else None


_MBI_L = "[AC-HJKMNP-RT-Y]"
_MBI_A = "[AC-HJKMNP-RT-Y0-9]"

SHAPED: tuple[TextPattern, ...] = (
    TextPattern(
        "vin",
        "VEHICLE_ID",
        re.compile(r"[A-HJ-NPR-Z0-9]{17}"),
        0.85,
        _vin,
        context=words("vin", "vehicle", "car", "chassis"),
        boost=0.1,
    ),
    TextPattern(
        "mac_address",
        "DEVICE_ID",
        re.compile(
            r":[0-9A-Fa-f]{2}(?::[0-9A-Fa-f]{2}){4}|-[0-9A-Fa-f]{2}(?:-[0-9A-Fa-f]{2}){4}"
            r"|\.[0-9A-Fa-f]{4}\.[0-9A-Fa-f]{4}"
        ),
        0.85,
        _mac,
    ),
    TextPattern(
        "gs1_udi",
        "DEVICE_ID",
        re.compile(r"\(01\)\d{14}(?:\(\d{2,4}\)[A-Za-z0-9-]{1,20})*(?![\w)])"),
        0.9,
    ),
    TextPattern(
        "mbi",
        "HEALTH_PLAN_ID",
        re.compile(rf"[1-9]{_MBI_L}{_MBI_A}\d-?{_MBI_L}{_MBI_A}\d-?{_MBI_L}{{2}}\d{{2}}"),
        0.7,
        _mbi,
    ),
)
