"""What the column classifier weighs, as tables: full-value patterns per entity (RE2
syntax, run by pyarrow over a whole sample), the weaker patterns a column name must confirm,
the order entities are tried in, column-name hints, and the operator suggested for each
entity in a drafted policy.
"""

from __future__ import annotations

import re
from typing import Any

FREE_TEXT = "FREE_TEXT"
IDENTIFIER = "IDENTIFIER"

#: Full-value patterns (RE2 syntax, run by pyarrow over the whole sample).
VALUE_PATTERNS: dict[str, str] = {
    "EMAIL_ADDRESS": r"^[A-Za-z0-9._%+'-]+@(?:[A-Za-z0-9-]+\.)+[A-Za-z]{2,24}$",
    "IP_ADDRESS": (
        r"^(?:(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)$"
        r"|^(?:[0-9A-Fa-f]{0,4}:){2,7}[0-9A-Fa-f]{0,4}$"
    ),
    "IBAN_CODE": r"^[A-Z]{2}\d{2}(?: ?[A-Z0-9]){11,32}$",
    "CREDIT_CARD": r"^\d(?:[ -]?\d){11,18}$",
    "US_SSN": r"^\d{3}-\d{2}-\d{4}$|^\d{3} \d{2} \d{4}$",
    "DATE_TIME": (
        r"^\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?"
        r"(?:Z|[+-]\d{2}(?::?\d{2})?)?)?$"
        r"|^\d{1,2}[/.-]\d{1,2}[/.-]\d{2,4}(?: \d{1,2}:\d{2}(?::\d{2})?)?$"
        r"|^(?i:[a-z]{3,9}\.? \d{1,2},? \d{4}|\d{1,2} [a-z]{3,9}\.? \d{4})$"
    ),
    "PHONE_NUMBER": (
        r"^(?:\(\+\d{1,4}\) ?|\+|00)?\(?\d[\d ().\-/]{5,22}\d"
        r"(?: ?(?:x|ext\.?|#) ?\d{1,6})?$"
    ),
    "ZIP_CODE": (
        r"^\d{5}(?:-\d{4})?$|^[A-Z]{1,2}\d[A-Z\d]? ?\d[A-Z]{2}$|^[A-Z]\d[A-Z] ?\d[A-Z]\d$"
        r"|^\d{4} ?[A-Z]{2}$|^\d{2}-\d{3}$|^\d{3} \d{2}$|^\d{5}-\d{3}$"
    ),
    "US_BANK_NUMBER": r"^\d{8,17}$",
    "URL": r"^(?i:(?:https?|ftps?|sftp)://|www\.)[^\s]+$",
    "DEVICE_ID": (
        r"^[0-9A-Fa-f]{2}(?::[0-9A-Fa-f]{2}){5}$|^[0-9A-Fa-f]{2}(?:-[0-9A-Fa-f]{2}){5}$"
        r"|^[0-9A-Fa-f]{4}\.[0-9A-Fa-f]{4}\.[0-9A-Fa-f]{4}$|^\(01\)\d{14}"
    ),
    "VEHICLE_ID": r"^[A-HJ-NPR-Z0-9]{17}$",
    "PHOTO_FILE": r"^[^\s]*\.(?i:jpe?g|jfif|png|heic|heif|tiff?|dcm|dicom|bmp|gif|webp|avif)$",
}
#: Weaker formats accepted only with a confirming column name.
HINTED_PATTERNS: dict[str, str] = {
    "ZIP_CODE": r"^\d{4,6}$|^\d{8}$",
    "US_SSN": r"^\d{9}$",
    "DEVICE_ID": r"^\d{15}$",  # an IMEI (Luhn-checked)
}
#: Checked in this order; the first with enough hits wins (the specific before the general).
ORDER = (
    "EMAIL_ADDRESS",
    "URL",
    "DEVICE_ID",
    "VEHICLE_ID",
    "PHOTO_FILE",
    "IP_ADDRESS",
    "IBAN_CODE",
    "CREDIT_CARD",
    "US_SSN",
    "DATE_TIME",
    "PHONE_NUMBER",
    "ZIP_CODE",
    "US_BANK_NUMBER",
)

HINTS: tuple[tuple[str, re.Pattern[str]], ...] = tuple(
    (e, re.compile(rx))
    for e, rx in (
        ("EMAIL_ADDRESS", r"e_?mail|mail"),
        ("IP_ADDRESS", r"(?:^|_)ip(?:_|$)|ip_?addr|ipv[46]"),
        ("IBAN_CODE", r"iban"),
        ("CREDIT_CARD", r"card|(?:^|_)cc(?:_|$)|(?:^|_)pan(?:_|$)|cc_?num"),
        ("US_SSN", r"ssn|social_?sec|social_?security|(?:^|_)sin(?:_|$)|tax_?id"),
        ("DATE_TIME", r"date|dob|birth|(?:^|_)ts$|_at$|time|day|(?:^|_)dt(?:_|$)"),
        ("PHONE_NUMBER", r"phone|tel|mobile|cell|fax|contact_?no|(?:^|_)msisdn"),
        ("ZIP_CODE", r"zip|postal|postcode|post_?code|plz|(?:^|_)cap(?:_|$)"),
        ("US_BANK_NUMBER", r"account|acct|bank_?no|bank_?num|routing"),
        ("URL", r"(?:^|_)(?:url|uri|link|href|website|web_?site|homepage|web_?page)(?:_|$)"),
        (
            "VEHICLE_ID",
            r"(?:^|_)vin(?:_|$)|vehicle|plate|chassis|(?:^|_)reg(?:istration)?_?(?:no|num)",
        ),
        (
            "DEVICE_ID",
            r"serial|(?:^|_)s_?n(?:_|$)|imei|meid|(?:^|_)mac(?:_|$)|mac_?addr|device|(?:^|_)udi"
            r"|asset_?tag",
        ),
        (
            "MEDICAL_RECORD_NUMBER",
            r"(?:^|_)mrn|med(?:ical)?_?rec|chart_?(?:id|no|num)|patient_?(?:id|no|num)"
            r"|hospital_?(?:id|no|num)|nhs_?(?:no|num)",
        ),
        (
            "HEALTH_PLAN_ID",
            r"member_?(?:id|no|num)|subscriber|policy|insur|health_?plan|plan_?(?:id|no|num)"
            r"|beneficiary|medicare|medicaid|(?:^|_)mbi(?:_|$)|hicn|group_?(?:no|num)|claim_?(?:id|no|num)",
        ),
        (
            "ACCOUNT_NUMBER",
            r"account|acct|billing_?(?:id|no|num)|customer_?(?:no|num)|client_?(?:id|no|num)"
            r"|loyalty",
        ),
        (
            "LICENSE_NUMBER",
            r"licen[cs]e|(?:^|_)dl_?(?:no|num)|(?:^|_)dea(?:_|$)|certificate|(?:^|_)cert_?(?:id|no|num)"
            r"|permit|passport|badge",
        ),
        (
            "BIOMETRIC_ID",
            r"finger_?print|thumb_?print|retina|(?:^|_)iris|voice_?print|face_?(?:id|print|template)"
            r"|facial|biometric|palm_?(?:print|vein)",
        ),
        (
            "PHOTO_FILE",
            r"photo|picture|(?:^|_)pic(?:_|$)|image|(?:^|_)img|selfie|headshot|portrait|avatar"
            r"|mugshot",
        ),
        ("AGE_OVER_89", r"(?:^|_)age(?:_|$)|age_?(?:years|yrs)|(?:^|_)age_?at"),
        ("PERSON", r"name|first|last|surname|given|person|patient|customer_?name|owner|holder"),
        (
            "LOCATION",
            (
                r"city|town|country|state|addr|street|location|place|region|county|village|"
                r"municipality|province"
            ),
        ),
        (IDENTIFIER, r"(?:^|_)id$|_id$|^id_|mrn|(?:^|_)key$|_no$|_num$|number|uuid|guid|code$"),
        (FREE_TEXT, r"note|comment|text|description|remark|message|body|memo|narrative|summary"),
    )
)

#: Suggested operator per entity (policy ``action`` and parameters).
SUGGESTIONS: dict[str, tuple[str, dict[str, Any]]] = {
    "PERSON": ("surrogate", {"entity": "PERSON"}),
    "EMAIL_ADDRESS": ("tokenize", {"keep_domain": True}),
    "PHONE_NUMBER": ("mask", {"keep_last": 2}),
    "US_SSN": ("ff1", {"alphabet": "digits"}),
    "CREDIT_CARD": ("ff1", {"alphabet": "digits", "keep_last": 4, "luhn": True}),
    "IBAN_CODE": ("tokenize", {}),
    "IP_ADDRESS": ("tokenize", {}),
    "DATE_TIME": ("date_shift", {"max_days": 180}),
    "LOCATION": ("surrogate", {"entity": "LOCATION"}),
    "ZIP_CODE": ("generalize", {"keep_prefix": 3}),
    "US_BANK_NUMBER": ("tokenize", {}),
    # Identifiers stay joinable (the same number, the same token) and say nothing.
    "URL": ("tokenize", {}),
    "MEDICAL_RECORD_NUMBER": ("tokenize", {"deterministic": True}),
    "HEALTH_PLAN_ID": ("tokenize", {}),
    "ACCOUNT_NUMBER": ("tokenize", {}),
    "LICENSE_NUMBER": ("tokenize", {}),
    "VEHICLE_ID": ("tokenize", {}),
    "DEVICE_ID": ("tokenize", {}),
    # A biometric template has no use in an anonymized table; a token of it would still
    # link records of the same person.
    "BIOMETRIC_ID": ("drop", {}),
    "PHOTO_FILE": ("redact", {"replacement": "[PHOTO_FILE]"}),
    # HIPAA Safe Harbor: ages of 90 and over are one category ("90+").
    "AGE_OVER_89": ("generalize", {"bucket": 10, "top": 90}),
    IDENTIFIER: ("tokenize", {"deterministic": True}),
    FREE_TEXT: ("scrub_text", {"with": "redact"}),
}
