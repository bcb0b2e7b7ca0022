"""What the scanner knows of words: English words (spaCy's lemma tables and stop words) and
the name lists, and the questions asked of them ("is this a dictionary word the name lists do
not hold?", "does this word open a sentence?").

A pattern-only scanner (no spaCy model) has no English words: then no word counts as one.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

#: Endings taken off (and what replaces them) to find a word's lemma in the word list.
_SUFFIXES = (
    ("ies", "y"),
    ("ied", "y"),
    ("ing", ""),
    ("ing", "e"),
    ("ed", ""),
    ("ed", "e"),
    ("es", ""),
    ("s", ""),
    ("d", ""),
)
_LOWER_OR_I = re.compile(r"[ ,]+(?:[a-z]|I\b)")


def opens_sentence(text: str, start: int) -> bool:
    before = text[:start].rstrip(" \t\"'([")
    return not before or before[-1] in ".!?:;\n"


@dataclass(frozen=True, eq=False)
class Vocabulary:
    """English words (lower case; empty without a model) and the given names and surnames."""

    words: frozenset[str]
    given: frozenset[str]
    surnames: frozenset[str]

    def is_word(self, lower: str) -> bool:
        words = self.words
        if lower in words:
            return True
        for suffix, repl in _SUFFIXES:
            if lower.endswith(suffix) and lower[: -len(suffix)] + repl in words:
                return True
        return False

    def plain_word(self, word: str) -> bool:
        """A dictionary word the name lists do not hold ("Yesterday", "Target")."""
        return (
            word not in self.given
            and word not in self.surnames
            and bool(self.words)
            and self.is_word(word.lower())
        )

    def sentence_word(self, text: str, start: int, end: int) -> bool:
        """Whether ``text[start:end]`` is one English word opening a sentence before a
        lower-case word or "I": "Can I have ...", "Good morning"."""
        word = text[start:end]
        return (
            " " not in word
            and self.is_word(word.lower())
            and opens_sentence(text, start)
            and _LOWER_OR_I.match(text, end) is not None
        )
