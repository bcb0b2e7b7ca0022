"""Validators of the free-text patterns (``detect.patterns``): each confirms a candidate
match (Luhn, mod-97, SSN ranges, digit counts, date ranges) or rejects it, and may narrow
it or change its score. A validator gets the match and the joined batch text and returns
None to reject, or (start, end, score)."""

from __future__ import annotations

import ipaddress
import re

from veilflow.transform.checksums import card_ok, iban_prefix, ssn_ok

_NONDIGIT = re.compile(r"\D")
_GROUPS = re.compile(r"\d+")


_ACCOUNT = re.compile(
    r"(?<![^\W_])(?:account|acct|a/c|routing)(?![^\W_])[^\x00]{0,20}$", re.IGNORECASE
)
#: A Luhn-valid 15-16 digit number after these is a handset's IMEI, not a card.
_DEVICE = re.compile(r"\b(?:imei(?:sv)?|meid|serial|s/n|device)\b[^\x00]{0,16}$", re.IGNORECASE)


def validate_card(m: re.Match[str], text: str) -> tuple[int, int, float] | None:
    raw = m.group()
    if raw.isdigit() and len(raw) < 16 and _ACCOUNT.search(text, max(0, m.start() - 40), m.start()):
        return None  # a bare account number that happens to pass Luhn
    groups = [(g.start(), g.end()) for g in _GROUPS.finditer(raw)]
    # A trailing number after a card ("... 1111 2 times") must not hide the card.
    for last in range(len(groups), 0, -1):
        digits = _NONDIGIT.sub("", raw[: groups[last - 1][1]])
        if card_ok(digits):
            if _DEVICE.search(text, max(0, m.start() - 30), m.start()):
                return None
            return m.start(), m.start() + groups[last - 1][1], 1.0
        if len(digits) < 12:
            break
    return None


def validate_iban(m: re.Match[str], text: str) -> tuple[int, int, float] | None:
    raw = m.group()
    compact = raw.replace(" ", "")
    found = iban_prefix(compact)
    if found is None:
        return None
    valid, exact = found
    # Map the compact length back onto the spaced original.
    seen = 0
    for i, ch in enumerate(raw):
        if ch != " ":
            seen += 1
            if seen == len(valid):
                return m.start(), m.start() + i + 1, 1.0 if exact else 0.85
    return None  # pragma: no cover


def validate_ssn(m: re.Match[str], text: str) -> tuple[int, int, float] | None:
    digits = _NONDIGIT.sub("", m.group())
    return m.start(), m.end(), 0.85 if ssn_ok(digits) else 0.5


def validate_ip(m: re.Match[str], text: str) -> tuple[int, int, float] | None:
    address = m.group().split("%", 1)[0]  # fe80::1%eth0: the zone names an interface
    groups = [g for g in address.split(":") if g]
    if ":" in address and len(groups) < 4 and not any(len(g) >= 3 for g in groups):
        return None  # "::", "a::b": valid addresses in theory, punctuation in prose
    try:
        ipaddress.ip_address(address)
    except ValueError:
        return None
    return m.start(), m.end(), 0.95


_DATE_SHAPE = re.compile(
    r"^(?:\d{4}[-/.]\d{1,2}[-/.]\d{1,2}|\d{1,2}[-/.]\d{1,2}[-/.]\d{2,4}|\d{5}-\d{4})$"
)
_DATE_INSIDE = re.compile(
    r"\d{4}[-/.]\d{2}[-/.]\d{2}|\b\d{1,2}/\d{1,2}/\d{2,4}\b"
    r"|\b(?:0?[1-9]|[12]\d|3[01])([.-])(?:0?[1-9]|1[0-2])\1(?:19|20)\d\d\b"
)
_IPV4_SHAPE = re.compile(r"^\d{1,3}(?:\.\d{1,3}){3}$")
_EXT = re.compile(r"\s?(?:x|ext\.?|#)\s?\d{1,6}$", re.IGNORECASE)


def validate_phone(m: re.Match[str], text: str) -> tuple[int, int, float] | None:
    raw = m.group()
    start, end = m.start(), m.end()
    # Trim a trailing separator or unbalanced bracket the greedy class swallowed.
    while raw and raw[-1] in " .-/(":
        raw, end = raw[:-1], end - 1
    if raw.startswith("(") and raw.count("(") > raw.count(")"):
        raw, start = raw[1:], start + 1
    body = _EXT.sub("", raw)
    digits = _NONDIGIT.sub("", body)
    n = len(digits)
    if n < 7 or n > 15:
        return None
    if "  " in body or ". " in body or "--" in body or body.count("(") != body.count(")"):
        return None
    if _DATE_SHAPE.match(body) or _IPV4_SHAPE.match(body) or _DATE_INSIDE.search(body):
        return None
    plus = body.startswith(("+", "00", "(+"))
    separated = any(c in body for c in " .-()/")
    if plus or "(" in body or body != raw:
        score = 0.8
    elif separated:
        groups = [len(g) for g in _GROUPS.findall(body)]
        # Phone groups are 2-5 digits; an 8+ digit run with a separator is something else.
        score = 0.7 if max(groups) <= 5 or (max(groups) <= 8 and len(groups) >= 2) else 0.4
        if n < 8 or (n == 8 and len(groups) < 3):
            score = min(score, 0.45)
    elif n >= 10 or (n == 9 and digits[0] == "0"):
        score = 0.6 if digits[0] == "0" else 0.55
    else:
        score = 0.3
    return start, end, score


_STREETISH = re.compile(
    r"\b(?:Apt|Apartment|Suite|Unit|Street|St|Avenue|Ave|Road|Rd|Lane|Ln|Drive|Dr|Court|Ct|"
    r"Boulevard|Blvd|Way|Place|Pl|Terrace|Parkway|Highway|Circle|Trail|Square|Alley|Loop|"
    r"Ridge|Meadows?|Springs?|Port|Ports|Rapids?|Falls|Fords?|Groves?|Mountains?|Villages?|"
    r"Views?|Crossing|Estates?|Extensions?|Gardens?|Harbors?|Heights|Hills?|Islands?|Knolls?|"
    r"Lakes?|Landing|Lights?|Mills?|Mission|Parks?|Passage|Pines?|Plains?|Points?|Prairie|"
    r"Ramp|Ranch|Rest|Rue|Shoals?|Shores?|Skyway|Stravenue|Streets|Summit|Tunnel|Turnpike|"
    r"Union|Valleys?|Via|Vista|Walks?|Wells?|Isle|Junction|Keys?|Locks?|Manor|Motorway|"
    r"Overpass|Pike|Plaza|Route|Row|Run|Spur|Station|Stream|Track|Trace|Trafficway|"
    r"Underpass|Viaduct|Bridge|Brook|Brooks|Burg|Burgs|Bypass|Camp|Canyon|Cape|Causeway|"
    r"Centers?|Cliffs?|Club|Common|Corners?|Course|Courts|Coves?|Creek|Crescent|Crest|"
    r"Curve|Dale|Dam|Divide|Drives|Expressway|Ferry|Fields?|Flats?|Forest|Forges?|Forks?|"
    r"Freeway|Glens?|Greens?|Haven|Hollow|Inlet|Lodge|Mall|Mount|Neck|Orchard|Oval|Pass|"
    r"Path|Radial|Shoal|Spurs|Squares|Throughway|Trailer|Vly|Ville|Wall|Ways|Fort|Stream|"
    r"Apt\.)\b"
)


def validate_postcode(m: re.Match[str], text: str) -> tuple[int, int, float] | None:
    # "…, 77778 Torres Lane Apt. 072" is a house number, not a postcode.
    stop = len(text)
    for ch in ",.\n\x00;":
        k = text.find(ch, m.end(), stop)
        if k >= 0:
            stop = k
    if _STREETISH.search(text, m.end(), stop):
        return None
    return m.start(), m.end(), 0.75


def validate_date(m: re.Match[str], text: str) -> tuple[int, int, float] | None:
    nums = [int(x) for x in _GROUPS.findall(m.group())]
    if len(nums) >= 3 and len(m.group().split()) == 1:
        a, b, c = nums[:3]
        if a > 31:  # year first
            if not (1 <= b <= 12 and 1 <= c <= 31):
                return None
        elif not ((1 <= a <= 12 and 1 <= b <= 31) or (1 <= b <= 12 and 1 <= a <= 31)):
            return None
    return m.start(), m.end(), 0.85
