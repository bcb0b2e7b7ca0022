"""The pattern recognizers for structured PII in free text: e-mail, card, IBAN, SSN, IP,
bank account, phone, postcode, date and time (``PATTERNS``). Each is a ``TextPattern``
(``detect.text_pattern``) run once over a whole batch; its validator lives in
``detect.pattern_validators``.
"""

from __future__ import annotations

import re

from veilflow.detect.pattern_validators import (
    validate_card,
    validate_date,
    validate_iban,
    validate_ip,
    validate_phone,
    validate_postcode,
    validate_ssn,
)
from veilflow.detect.text_pattern import TextPattern, words
from veilflow.transform.checksums import ssn_ok

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
        validate_card,
    ),
    TextPattern(
        "iban",
        "IBAN_CODE",
        re.compile(r"(?<![\w])[A-Z]{2}\d{2}(?: ?[A-Z0-9]){11,32}(?![a-z0-9])"),
        1.0,
        validate_iban,
    ),
    TextPattern(
        "ssn",
        "US_SSN",
        re.compile(_B + r"\d{3}([- ])\d{2}\1\d{4}" + _E),
        0.85,
        validate_ssn,
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
        validate_ip,
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
        validate_phone,
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
        validate_postcode,
    ),
    TextPattern(
        "date_iso",
        "DATE_TIME",
        re.compile(
            r"(?<![\w.-])\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?"
            r"(?:Z|[+-]\d{2}:?\d{2})?)?(?![\w-])"
        ),
        0.85,
        validate_date,
    ),
    TextPattern(
        "date_numeric",
        "DATE_TIME",
        re.compile(r"(?<![\w./-])\d{1,2}[/.-]\d{1,2}[/.-](?:\d{4}|\d{2})(?![\w/-]|\.\d)"),
        0.7,
        validate_date,
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
