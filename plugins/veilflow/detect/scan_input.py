"""What goes into a scan: a value made scannable text (or reported unscannable), and a long
text cut into pieces for the models.

A value that cannot be scanned (not decodable as UTF-8, larger than the limit) is reported
with its reason; callers redact it and count it, never pass it through.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

from veilflow.detect.text_pattern import SEP


def normalize(value: object, limit: int) -> tuple[str | None, str | None]:
    """(text, None) to scan, (None, None) for NULL/empty, (None, reason) for unscannable."""
    if value is None:
        return None, None
    if isinstance(value, float) and math.isnan(value):
        return None, None
    if isinstance(value, (bytes, bytearray, memoryview)):
        try:
            value = bytes(value).decode("utf-8")
        except UnicodeDecodeError:
            return None, "not UTF-8"
    if not isinstance(value, str):
        try:
            import pandas as pd

            if value is pd.NA:
                return None, None
        except ImportError:  # pragma: no cover
            pass
        value = str(value)
    if not value:
        return None, None
    if len(value) > limit:
        return None, f"longer than {limit} characters"
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:  # lone surrogates from surrogateescape'd bytes
        return None, "not UTF-8"
    if SEP in value:
        value = value.replace(SEP, " ")  # same length: offsets stay true
    return value, None


def pieces(text: str, size: int) -> Iterator[tuple[int, str]]:
    """``text`` in pieces of at most ``size`` characters, cut at a space where one is in the
    second half of a piece, each with its offset."""
    if len(text) <= size:
        yield 0, text
        return
    pos = 0
    while pos < len(text):
        end = min(len(text), pos + size)
        if end < len(text):
            cut = text.rfind(" ", pos + size // 2, end)
            end = cut if cut > pos else end
        yield pos, text[pos:end]
        pos = end
