"""What "as whole words" means to the gate's leak checks (ADR 0008): a text found in another
counts only where no letter or digit is joined to either end of it. An underscore separates
words, so a value inside ``tok_v1_<digest>`` still counts."""

from __future__ import annotations

import re
from collections.abc import Iterable


def whole_words(texts: Iterable[str], flags: int = 0) -> re.Pattern[str]:
    """A pattern for any of ``texts`` as whole words (longest first, so the longest one
    that fits is the one reported)."""
    alternatives = "|".join(re.escape(t) for t in sorted(texts, key=len, reverse=True))
    return re.compile(rf"(?<![^\W_])(?:{alternatives})(?![^\W_])", flags)
