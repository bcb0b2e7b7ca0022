"""Pattern recognizers for structured PII in free text, run over a whole batch at once.

The scanner joins a batch of texts with NUL separators (no pattern crosses one) and runs
each compiled pattern once over the joined string; a validator then confirms each
candidate (Luhn, mod-97, SSN ranges, digit counts) and may adjust its score. Context words
just before a candidate raise its score, as in Presidio's context enhancement.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from veilflow.transform.checksums import card_ok, iban_prefix, ssn_ok

SEP = "\x00"
_CONTEXT_WINDOW = 48

#: A validator gets the match and the joined text; it returns None to reject, or
#: (start, end, score) possibly narrowed.
Validator = Callable[[re.Match[str], str], "tuple[int, int, float] | None"]


@dataclass(frozen=True)
class TextPattern:
    """One regex recognizer: ``entity`` at ``score``, ``context`` words boost by ``boost``."""

    name: str
    entity: str
    regex: re.Pattern[str]
    score: float
    validator: Validator | None = None
    context: re.Pattern[str] | None = None
    boost: float = 0.35
    #: Without a context word the finding is dropped.
    needs_context: bool = False
    group: int = 0

    def find(self, text: str) -> Iterator[tuple[int, int, float]]:
        for m in self.regex.finditer(text):
            if self.group:
                start, end, score = m.start(self.group), m.end(self.group), self.score
            else:
                start, end, score = m.start(), m.end(), self.score
            if self.validator is not None:
                checked = self.validator(m, text)
                if checked is None:
                    continue
                start, end, score = checked
            if self.context is not None:
                lo = max(0, start - _CONTEXT_WINDOW)
                before = text[lo:start]
                cut = before.rfind(SEP)
                if cut >= 0:
                    before = before[cut + 1 :]
                if self.context.search(before):
                    score = min(1.0, score + self.boost)
                elif self.needs_context:
                    continue
            yield start, end, score


def before(rx: re.Pattern[str], text: str, start: int, width: int = 40) -> re.Match[str] | None:
    """``rx`` (anchored with ``$``) found in the ``width`` characters before ``start``, not
    across a text boundary. Recognizers look behind this way rather than with a leading
    lookbehind or ``\\b``: a regex that starts with a literal or a small character set is
    searched many times faster by ``re``."""
    lo = max(0, start - width)
    cut = text.rfind(SEP, lo, start)
    return rx.search(text, lo if cut < 0 else cut + 1, start)


_Trie = dict[str, "_Trie"]


def trie(phrases: list[str]) -> str:
    """A regex matching any of ``phrases``, written as a trie ("car(?:d|e)?"): ``re`` tries
    one branch per character instead of every phrase at every position, and the longer of
    two phrases first ("license plate" before "license")."""
    tree: _Trie = {}
    for phrase in phrases:
        node = tree
        for ch in phrase:
            node = node.setdefault(ch, {})
        node[""] = {}

    def emit(node: _Trie) -> str:
        branches = [re.escape(ch) + emit(sub) for ch, sub in sorted(node.items()) if ch]
        if not branches:
            return ""
        body = branches[0] if len(branches) == 1 else "(?:" + "|".join(branches) + ")"
        if "" in node:  # a phrase ends here and longer ones go on
            return f"(?:{body})?" if len(branches) == 1 else body + "?"
        return body

    return emit(tree)


def words(*ws: str) -> re.Pattern[str]:
    """A case-insensitive pattern matching any of the context words as whole words; an
    underscore separates words, so field names count (``account_no``, ``phone_number``)."""
    return re.compile(r"(?<![^\W_])(?:" + "|".join(ws) + r")(?![^\W_])", re.IGNORECASE)


# --- validators ---------------------------------------------------------------------------

_NONDIGIT = re.compile(r"\D")
_GROUPS = re.compile(r"\d+")


_ACCOUNT = re.compile(
    r"(?<![^\W_])(?:account|acct|a/c|routing)(?![^\W_])[^\x00]{0,20}$", re.IGNORECASE
)
#: A Luhn-valid 15-16 digit number after these is a handset's IMEI, not a card.
_DEVICE = re.compile(r"\b(?:imei(?:sv)?|meid|serial|s/n|device)\b[^\x00]{0,16}$", re.IGNORECASE)


def _card(m: re.Match[str], text: str) -> tuple[int, int, float] | None:
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


def _iban(m: re.Match[str], text: str) -> tuple[int, int, float] | None:
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


def _ssn(m: re.Match[str], text: str) -> tuple[int, int, float] | None:
    digits = _NONDIGIT.sub("", m.group())
    return m.start(), m.end(), 0.85 if ssn_ok(digits) else 0.5


def _ip(m: re.Match[str], text: str) -> tuple[int, int, float] | None:
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


def _phone(m: re.Match[str], text: str) -> tuple[int, int, float] | None:
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


def _postcode(m: re.Match[str], text: str) -> tuple[int, int, float] | None:
    # "…, 77778 Torres Lane Apt. 072" is a house number, not a postcode.
    stop = len(text)
    for ch in ",.\n\x00;":
        k = text.find(ch, m.end(), stop)
        if k >= 0:
            stop = k
    if _STREETISH.search(text, m.end(), stop):
        return None
    return m.start(), m.end(), 0.75


def _date(m: re.Match[str], text: str) -> tuple[int, int, float] | None:
    nums = [int(x) for x in _GROUPS.findall(m.group())]
    if len(nums) >= 3 and len(m.group().split()) == 1:
        a, b, c = nums[:3]
        if a > 31:  # year first
            if not (1 <= b <= 12 and 1 <= c <= 31):
                return None
        elif not ((1 <= a <= 12 and 1 <= b <= 31) or (1 <= b <= 12 and 1 <= a <= 31)):
            return None
    return m.start(), m.end(), 0.85


# --- the patterns -------------------------------------------------------------------------

_B = r"(?<![\w@.+-])"  # left boundary: not inside a word, email, decimal or signed number
_E = r"(?![\w@-])"  # right boundary

MONTH = (
    r"(?:Jan(?:uary)?|Feb(?:ruary)?|Mar(?:ch)?|Apr(?:il)?|May|June?|July?|Aug(?:ust)?|"
    r"Sep(?:t(?:ember)?)?|Oct(?:ober)?|Nov(?:ember)?|Dec(?:ember)?)"
)

PHONE_CONTEXT = words(
    "phone",
    "tel",
    "callback",
    "call back",
    "voicemail",
    "telephone",
    "mobile",
    "cell",
    "call",
    "called",
    "calling",
    "reach",
    "contact",
    "fax",
    "text",
    "sms",
    "whatsapp",
    "number",
    "dial",
    "ring",
    "line",
    "hotline",
    "no",
    "nr",
    "ph",
    "mob",
    "reached",
    "phoned",
    "landline",
    "cellphone",
    "pager",
    "home",
    "office",
)

PATTERNS: tuple[TextPattern, ...] = (
    TextPattern(
        "email",
        "EMAIL_ADDRESS",
        re.compile(
            r"(?<![\w.%+-])[A-Za-z0-9][A-Za-z0-9._%+-]*@(?:[A-Za-z0-9-]+\.)+[A-Za-z]{2,24}"
            r"(?![\w-])"
        ),
        1.0,
    ),
    TextPattern(
        "credit_card",
        "CREDIT_CARD",
        re.compile(_B + r"\d{2,6}(?:[ -]?\d{1,6}){1,5}" + _E),
        1.0,
        _card,
    ),
    TextPattern(
        "iban",
        "IBAN_CODE",
        re.compile(r"(?<![\w])[A-Z]{2}\d{2}(?: ?[A-Z0-9]){11,32}(?![a-z0-9])"),
        1.0,
        _iban,
    ),
    TextPattern(
        "ssn",
        "US_SSN",
        re.compile(_B + r"\d{3}([- ])\d{2}\1\d{4}" + _E),
        0.85,
        _ssn,
        context=words("ssn", "social security", "social", "ss#", "ss no", "taxpayer", "tin"),
        boost=0.15,
    ),
    TextPattern(
        "ssn_bare",
        "US_SSN",
        re.compile(_B + r"\d{9}" + _E),
        0.5,
        lambda m, t: (m.start(), m.end(), 0.5) if ssn_ok(m.group()) else None,
        context=words("ssn", "social security", "ss#", "social security number"),
        boost=0.4,
        needs_context=True,
    ),
    TextPattern(
        "ipv4",
        "IP_ADDRESS",
        re.compile(
            r"(?<![\w.])(?:(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}"
            r"(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(?![\w.]\w)"
        ),
        0.95,
    ),
    TextPattern(
        "ipv6",
        "IP_ADDRESS",
        re.compile(
            r"(?<![\w:.])(?:[0-9A-Fa-f]{0,4}:){2,7}"
            r"(?:(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(?:\.(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}"
            r"|[0-9A-Fa-f]{0,4})(?:%\w+(?:\.\w+)*)?(?![\w:]|\.\d)"
        ),
        0.95,
        _ip,
    ),
    TextPattern(
        "bank_account",
        "US_BANK_NUMBER",
        re.compile(_B + r"\d{8,17}" + _E),
        0.4,
        context=words(
            "account",
            "acct",
            "bank",
            "checking",
            "savings",
            "a/c",
            "routing",
            "account number",
            "account no",
        ),
        boost=0.45,
        needs_context=True,
    ),
    TextPattern(
        "phone",
        "PHONE_NUMBER",
        re.compile(
            r"(?<![\w+@./-])(?:\(\+\d{1,4}\)[ ]?|\+|00)?\(?\d[\d ().\-/]{5,24}\d"
            r"(?:\s?(?:x|ext\.?|#)\s?\d{1,6})?(?![\w@])",
            re.IGNORECASE,
        ),
        0.7,
        _phone,
        context=PHONE_CONTEXT,
        boost=0.25,
    ),
    TextPattern(
        "zip_us",
        "ZIP_CODE",
        re.compile(
            r"(?<=\b(?:A[LKZR]|C[AOT]|DE|DC|FL|GA|HI|I[DLNA]|K[SY]|LA|M[EDAINSOT]|N[EVHJMYCD]"
            r"|O[HKR]|PA|RI|S[CD]|T[NX]|UT|V[TA]|W[AVIY]|PR|GU|VI|AS|MP|AA|AE|AP|MH|PW|FM) )"
            r"\d{5}(?:-\d{4})?(?!\w)"
        ),
        0.9,
    ),
    TextPattern(
        "zip_context",
        "ZIP_CODE",
        re.compile(
            r"(?i:zip|postal|post|postcode|plz|cp|cap)(?i:\s*code)?\s*[:#]?\s*"
            r"([A-Z0-9][A-Z0-9 -]{2,8}[A-Z0-9])(?!\w)"
        ),
        0.85,
        group=1,
    ),
    TextPattern(
        "postcode_uk",
        "ZIP_CODE",
        re.compile(r"(?<![\w-])[A-Z]{1,2}\d[A-Z\d]? \d[A-Z]{2}(?!\w)"),
        0.8,
    ),
    TextPattern(
        "postcode_ca", "ZIP_CODE", re.compile(r"(?<![\w-])[A-Z]\d[A-Z] \d[A-Z]\d(?!\w)"), 0.8
    ),
    TextPattern(
        # "…, 10115 Berlin", "…, 4896 VR Breda", "…, 74-360 Nowy Targ": a postcode before a city.
        "postcode_eu",
        "ZIP_CODE",
        re.compile(
            r"(?<=, )(?:\d{3} \d{2}|\d{4,6}|\d{4} ?[A-Z]{2}|\d{2}-\d{3}|\d{5}-\d{3}"
            r"|\d{4}-\d{3}|\d{8})(?= [A-ZÀ-Ý][\w'-]+)"
        ),
        0.75,
        _postcode,
    ),
    TextPattern(
        "date_iso",
        "DATE_TIME",
        re.compile(
            r"(?<![\w.-])\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?"
            r"(?:Z|[+-]\d{2}:?\d{2})?)?(?![\w-])"
        ),
        0.85,
        _date,
    ),
    TextPattern(
        "date_numeric",
        "DATE_TIME",
        re.compile(r"(?<![\w./-])\d{1,2}[/.-]\d{1,2}[/.-](?:\d{4}|\d{2})(?![\w/-]|\.\d)"),
        0.7,
        _date,
    ),
    TextPattern(
        "time",
        "DATE_TIME",
        re.compile(
            r"(?<![\w:.])(?:[01]?\d|2[0-3]):[0-5]\d(?::[0-5]\d)?(?:\s?[ap]\.?m\.?)?(?![\w:])",
            re.IGNORECASE,
        ),
        0.6,
    ),
    TextPattern(
        # Clock times in the other ways people write them: "6pm", "11 AM", "9.15am",
        # "9h30", "18:45h", "0900 hrs", "3 o'clock"; and "14.30" after a word that asks for
        # a time ("at 14.30", "until 17.00"), where a bare "9.30" may be a version or a price.
        "time_clock",
        "DATE_TIME",
        re.compile(
            r"(?<![\w:.,/-])(?:"
            r"(?:1[0-2]|0?[1-9])(?:[:.][0-5]\d)?\s?[ap]\.?m\.?(?!\w)"
            r"|(?:[01]?\d|2[0-3])h[0-5]\d(?!\w)"
            r"|(?:[01]?\d|2[0-3]):[0-5]\d\s?h(?:rs?)?(?!\w)"
            r"|(?:[01]\d|2[0-3])[0-5]\d\s?(?:hrs|h)(?!\w)"
            r"|(?:1[0-2]|[1-9])\s?o['’]clock(?!\w)"
            r")",
            re.IGNORECASE,
        ),
        0.6,
    ),
    TextPattern(
        "time_dotted",
        "DATE_TIME",
        re.compile(
            r"\b(?i:at|from|until|till|til|by|before|after|around|about|between|since|and)\s"
            r"((?:[01]?\d|2[0-3])\.[0-5]\d)(?![\w,]|\.\d)"
        ),
        0.6,
        group=1,
    ),
    TextPattern(
        "date_words",
        "DATE_TIME",
        re.compile(
            r"\b(?:\d{1,2}(?:st|nd|rd|th)?\s+(?:of\s+)?" + MONTH + r"\.?,?\s+\d{4}"
            r"|" + MONTH + r"\.?\s+\d{1,2}(?:st|nd|rd|th)?(?:,?\s+\d{4})?"
            r"|" + MONTH + r"\s+\d{4})\b"
        ),
        0.85,
    ),
)
