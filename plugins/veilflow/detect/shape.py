"""Masked shapes of values, the most a report may show of them: ``j***@e***.com``,
``ddd-dd-dddd``, ``J*** S****``. Never the value itself."""

from __future__ import annotations

import re

_WORD = re.compile(r"[^\W\d_]+")
_DIGIT = re.compile(r"\d")


def masked_shape(value: str, entity: str | None = None, limit: int = 40) -> str:
    """A shape that shows the format of ``value`` without its content."""
    if not value:
        return ""
    if entity == "EMAIL_ADDRESS" and "@" in value:
        local, _, domain = value.rpartition("@")
        host, dot, tld = domain.rpartition(".")
        return f"{local[:1]}***@{host[:1]}***{dot}{tld if len(tld) <= 6 else '***'}"
    shaped = _WORD.sub(
        lambda m: (
            m.group()[0] + "*" * min(len(m.group()) - 1, 6)
            if entity in ("PERSON", "LOCATION")
            else "a" * min(len(m.group()), 6)
        ),
        value,
    )
    shaped = _DIGIT.sub("d", shaped)
    return shaped if len(shaped) <= limit else shaped[:limit] + "…"
