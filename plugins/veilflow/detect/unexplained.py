"""Whether a text needs a statistical model: only a word the patterns and rules leave
unexplained can give spaCy's stock NER or the trained detector something to add, so texts
the rules explain whole are not run through them (the scanner's ``ner: auto``).
"""

from __future__ import annotations

import re
from collections.abc import Callable

from veilflow.detect.gazetteers import NOT_NAME
from veilflow.detect.spans import Span
from veilflow.detect.vocabulary import Vocabulary, opens_sentence

#: A letter: a text without one holds no name or place.
HAS_LETTER = re.compile(r"[^\W\d_]")
_CAPITALISED = re.compile(r"(?<![\w@.'’-])[^\W\d_][\w'’-]*")
_LOWER_NEXT = re.compile(r"[ ,]+[a-z]")
#: A word with a digit in it (an identifier, a time, a house number, an amount), without
#: the punctuation that ends its sentence.
_DIGIT_WORD = re.compile(r"[\w/.:#-]*\d(?:[\w/.:#-]*\w)?")
#: A lower-case name as a chat turn's speaker or after a greeting or "it's"/"this is".
_LOWER_SPEAKER = re.compile(
    r"(?:^|\n)[a-z][a-z'-]{1,20}:|\b(?:hi|hey|hello|thanks|it's|its|this is|i'm|im)[ ,]+[a-z]",
)

#: The score an entity's finding needs to count (``Scanner.threshold``).
Threshold = Callable[[str], float]


def _ruled(cands: list[Span], threshold: Threshold) -> list[tuple[int, int]]:
    # The trained detector's own guesses do not explain a word: only rules do.
    return [
        (c.start, c.end) for c in cands if c.score >= threshold(c.entity) and c.source != "model"
    ]


def needs_ner(text: str, cands: list[Span], threshold: Threshold, vocabulary: Vocabulary) -> bool:
    """Whether any capitalised word is left unexplained by the patterns and rules: not
    inside a finding, not a known non-name, not an acronym or code, not a dictionary word
    opening a sentence. Only then can the NER model add a name or place."""
    if not text or not HAS_LETTER.search(text):
        return False
    covered = _ruled(cands, threshold)
    given, surnames = vocabulary.given, vocabulary.surnames
    for m in _CAPITALISED.finditer(text):
        word = m.group()
        if not word[0].isupper() or word in NOT_NAME:
            continue
        if any(s <= m.start() and m.end() <= e for s, e in covered):
            continue
        if (word.isupper() and len(word) <= 5) or any(ch.isdigit() for ch in word):
            continue  # acronyms (EUR, USD) and codes (ORD-1234)
        if (
            word not in given
            and word not in surnames
            and opens_sentence(text, m.start())
            and _LOWER_NEXT.match(text, m.end())
            and vocabulary.is_word(word.lower())
        ):
            continue
        return True
    return False


def needs_model(text: str, cands: list[Span], threshold: Threshold, vocabulary: Vocabulary) -> bool:
    """Whether the trained detector can add anything: a capitalised word the rules leave
    unexplained (as for the stock NER), a word with a digit no finding covers (an
    identifier, a time, a house number), or a lower-case chat turn's speaker or
    greeting ("irmela: no it wasnt me"). Text the rules explain whole is not run."""
    if not text.strip():
        return False
    if needs_ner(text, cands, threshold, vocabulary):
        return True
    covered = _ruled(cands, threshold)
    for m in _DIGIT_WORD.finditer(text):
        word = m.group()
        if len(word) < 5 and word.isdigit():
            continue  # "ending in 5943": no identifier the detector may report is this short
        if not any(s <= m.start() and m.end() <= e for s, e in covered):
            return True
    return _LOWER_SPEAKER.search(text) is not None
