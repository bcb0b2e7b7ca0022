"""The pattern recognizer: one regex with a validator and context words, run over a batch.

The scanner joins a batch of texts with NUL separators (``SEP``; no pattern crosses one) and
runs each compiled pattern once over the joined string; a validator then confirms each
candidate and may adjust its score. Context words just before a candidate raise its score,
as in Presidio's context enhancement. The helpers here (``before``, ``trie``, ``words``) are
what the recognizers of ``detect.patterns``, ``detect.dates``, ``detect.locators`` and
``detect.identifiers`` are written with.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass

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
