"""The free-text scanner: finds PII spans in many texts at once.

Per batch: texts are joined with NUL separators and every pattern recognizer and
name/place rule runs once over the joined string; the project's trained detector
(``detect.model``, when one is in force) runs over every text of the batch, and spaCy's stock
model runs only its NER component, through ``nlp.pipe`` over the texts that need it. Findings are filtered (allow list, per-entity
thresholds) and resolved into non-overlapping spans per text. One ``Scanner`` per process
(``scanner_for``), so model start-up happens once per worker.

A value that cannot be scanned (not decodable as UTF-8, larger than ``max_text_chars``)
is reported as unscannable; callers redact it and count it, never pass it through.
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Self

import numpy as np

from veilflow.detect.dates import DATE_PATTERNS
from veilflow.detect.engine import english_words, load_nlp
from veilflow.detect.gazetteers import AMBIGUOUS_GIVEN, NOT_NAME, cities, gazetteers
from veilflow.detect.identifiers import (
    IDENTIFIER_ENTITIES,
    SHAPED,
    card_grouped,
    find_identifiers,
    identifier_phrases,
)
from veilflow.detect.locators import LOCATOR_PATTERNS
from veilflow.detect.matmul import Matmul, one_blas_thread
from veilflow.detect.model import MODEL_SCORE, DetectorRef, load_detector
from veilflow.detect.model import resolve as resolve_detector
from veilflow.detect.patterns import MONTH, PATTERNS
from veilflow.detect.roles import find_role_names, person_role
from veilflow.detect.rules import find_names, find_places
from veilflow.detect.spans import ENTITIES, Span, resolve
from veilflow.detect.speakers import find_lower_names
from veilflow.detect.text_pattern import SEP, TextPattern, words
from veilflow.policy.detection import DetectionSettings

log = logging.getLogger(__name__)

#: spaCy label → entity, with the score Presidio gives spaCy findings.
NER_LABELS: dict[str, str] = {
    "PERSON": "PERSON",
    "GPE": "LOCATION",
    "LOC": "LOCATION",
    "FAC": "LOCATION",
    "DATE": "DATE_TIME",
    "TIME": "DATE_TIME",
}
NER_SCORE = 0.85
#: A lower-case name in a chat position (``veilflow.detect.speakers``): a rule, but a guess.
SPEAKER_SCORE = 0.75
#: Texts longer than this go through NER in pieces (cut at whitespace).
NER_PIECE = 20_000

#: A spaCy DATE/TIME is personal data only with a concrete date or time in it.
_DATE_EVIDENCE = re.compile(
    rf"\b{MONTH}\.?\s+\d|\d\s+{MONTH}\b|\b\d{{1,4}}[-/.]\d{{1,2}}[-/.]\d{{1,4}}\b|"
    r"\b(?:19|20)\d\d\b|\b\d{1,2}:\d\d\b|\b\d{1,2}\s?(?:am|pm|a\.m\.|p\.m\.)"
)
_HAS_UPPER = re.compile(r"[^\W\d_]")
_CAPITALISED = re.compile(r"(?<![\w@.'’-])[^\W\d_][\w'’-]*")
_LOWER_NEXT = re.compile(r"[ ,]+[a-z]")
_LOWER_OR_I = re.compile(r"[ ,]+(?:[a-z]|I\b)")
#: What no finding of the trained detector runs across: a line break, a " | " separator.
_LINE_BREAK = re.compile(r"[ \t]*(?:\r?\n|[ \t]\|[ \t])[ \t]*")


def _opens_sentence(text: str, start: int) -> bool:
    before = text[:start].rstrip(" \t\"'([")
    return not before or before[-1] in ".!?:;\n"


_LEAD_ROLES = re.compile(
    r"^(?:(?:Patient|Client|Customer|Agent|Caller|User|Member|Dear|Hi|Hello|"
    r"Hey|Thanks|Contact|Name|Attn|Employee|Tenant|Owner|Applicant|Driver|"
    r"Mr|Mrs|Ms|Dr)\.?[ ,:]+)+"
)


@dataclass
class BatchScan:
    """Spans per text (sorted, non-overlapping) and which texts could not be scanned."""

    spans: list[list[Span]]
    unscannable: list[int] = field(default_factory=list)
    reasons: dict[int, str] = field(default_factory=dict)


def _normalize(value: object, limit: int) -> tuple[str | None, str | None]:
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


def _pieces(text: str, size: int) -> Iterator[tuple[int, str]]:
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


class Scanner:
    """Finds PII in batches of texts under one ``DetectionSettings``."""

    def __init__(
        self,
        settings: DetectionSettings | None = None,
        *,
        use_ner: bool = True,
        detector: DetectorRef | None = None,
        matmul: Matmul = "numpy",
    ) -> None:
        """``detector`` overrides ``settings.detector`` (a candidate being evaluated);
        ``matmul="blis"`` runs the models on thinc's default product (the reference the
        equivalence test and the benchmarks compare with, see ``detect.engine``)."""
        self.settings = settings or DetectionSettings()
        self.use_ner = use_ner
        self._nlp: Any = None
        self._words: frozenset[str] = frozenset()
        self.detector: DetectorRef | None = None
        self._detector: Any = None
        if use_ner:
            self._nlp = load_nlp(self.settings.model, matmul)
            # The lemma tables hold no function words ("what", "the"): spaCy's stop words do.
            from spacy.lang.en.stop_words import STOP_WORDS

            self._words = english_words(self.settings.model) | STOP_WORDS
            self.detector = detector or resolve_detector(self.settings.detector)
            if self.detector is not None:
                self._detector = load_detector(str(self.detector.model_path), matmul)
        g = gazetteers()
        self._names = (g.given, g.surnames)
        if use_ner:
            # A prose scanner looks for places in every text: its city list is built here, so
            # that forked workers inherit it. A pattern scanner (the gate's rescan of kept
            # columns) leaves places out, so it builds the list only if a scan asks for them.
            cities()
        self.patterns: tuple[TextPattern, ...] = (
            PATTERNS + DATE_PATTERNS + LOCATOR_PATTERNS + SHAPED + tuple(self._custom_patterns())
        )
        self._allow = {t.strip().casefold() for t in self.settings.allow_list}

    def _custom_patterns(self) -> Iterator[TextPattern]:
        s = self.settings
        for i, spec in enumerate(s.recognizers):
            yield TextPattern(
                f"policy_regex_{i}",
                spec.entity,
                re.compile(spec.regex),
                spec.score,
                context=words(*map(re.escape, spec.context)) if spec.context else None,
            )
        for i, deny in enumerate(s.deny_lists):
            terms = sorted(deny.terms, key=len, reverse=True)
            rx = re.compile(
                r"(?<!\w)(?:" + "|".join(map(re.escape, terms)) + r")(?!\w)", re.IGNORECASE
            )
            yield TextPattern(f"policy_deny_{i}", deny.entity, rx, 1.0)

    def threshold(self, entity: str) -> float:
        return self.settings.thresholds.get(entity, self.settings.default_threshold)

    # -- scanning ---------------------------------------------------------------------------

    def scan(self, texts: Sequence[object], entities: Iterable[str] | None = None) -> BatchScan:
        """Scan a batch; ``entities`` restricts what is reported (default: everything)."""
        limit = self.settings.max_text_chars
        clean: list[str] = []
        result = BatchScan(spans=[[] for _ in texts])
        for i, value in enumerate(texts):
            text, reason = _normalize(value, limit)
            if reason is not None:
                result.unscannable.append(i)
                result.reasons[i] = reason
            clean.append(text or "")
        if result.unscannable:
            log.warning(
                "%d value(s) could not be scanned (%s); they will be redacted",
                len(result.unscannable),
                ", ".join(sorted(set(result.reasons.values()))),
            )
        wanted = set(entities) if entities is not None else None
        found: list[list[Span]] = [[] for _ in texts]
        self._find_patterns(clean, found, wanted)
        if self._words and (wanted is None or "PERSON" in wanted):
            for i, text in enumerate(clean):
                for s, e in find_lower_names(text, self._is_word):
                    found[i].append(Span(s, e, "PERSON", SPEAKER_SCORE, "speakers"))
        if self._detector is not None and self.detector is not None:
            learned = set(self.detector.entities)
            if wanted is None or wanted & learned:
                todo = [i for i, t in enumerate(clean) if self._needs_model(t, found[i])]
                self._find_learned(clean, found, wanted, todo)
                if self._words and (wanted is None or "PERSON" in wanted):
                    # Texts the rules explain whole hold no word left for a name either.
                    for i in todo:
                        self._find_role_names(clean[i], found[i])
        if self.use_ner and (wanted is None or wanted & {"PERSON", "LOCATION", "DATE_TIME"}):
            todo = (
                [i for i, t in enumerate(clean) if self._needs_ner(t, found[i])]
                if self.settings.ner == "auto"
                else list(range(len(clean)))
            )
            self._find_ner(clean, found, wanted, todo)
        for i, cands in enumerate(found):
            if cands:
                result.spans[i] = self._finish(clean[i], cands)
        return result

    def scan_text(self, text: object) -> list[Span]:
        return self.scan([text]).spans[0]

    def _find_patterns(
        self, clean: list[str], found: list[list[Span]], wanted: set[str] | None
    ) -> None:
        joined = SEP.join(clean)
        lengths = np.fromiter((len(t) + 1 for t in clean), dtype=np.int64, count=len(clean))
        starts = np.concatenate(([0], np.cumsum(lengths)[:-1]))
        gs: list[int] = []
        ge: list[int] = []
        ents: list[str] = []
        scores: list[float] = []
        sources: list[str] = []

        def take(it: Iterable[tuple[int, int, float]], entity: str, source: str) -> None:
            for s, e, sc in it:
                gs.append(s)
                ge.append(e)
                ents.append(entity)
                scores.append(sc)
                sources.append(source)

        for p in self.patterns:
            if wanted is None or p.entity in wanted:
                take(p.find(joined), p.entity, p.name)
        for s, e, sc, entity in find_identifiers(joined, wanted):
            gs.append(s)
            ge.append(e)
            ents.append(entity)
            scores.append(sc)
            sources.append("context_id")
        if wanted is None or "PERSON" in wanted:
            take(find_names(joined), "PERSON", "names")
        if wanted is None or "LOCATION" in wanted:
            take(find_places(joined), "LOCATION", "places")
        if not gs:
            return
        idx = np.searchsorted(starts, np.asarray(gs), side="right") - 1
        for k, i in enumerate(idx.tolist()):
            base = int(starts[i])
            found[i].append(Span(gs[k] - base, ge[k] - base, ents[k], scores[k], sources[k]))

    def _needs_ner(self, text: str, cands: list[Span]) -> bool:
        """Whether any capitalised word is left unexplained by the patterns and rules: not
        inside a finding, not a known non-name, not an acronym or code, not a dictionary word
        opening a sentence. Only then can the NER model add a name or place."""
        if not text or not _HAS_UPPER.search(text):
            return False
        # The trained detector's own guesses do not explain a word: only rules do.
        covered = [
            (c.start, c.end)
            for c in cands
            if c.score >= self.threshold(c.entity) and c.source != "model"
        ]
        given, surnames = self._names
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
                and _opens_sentence(text, m.start())
                and _LOWER_NEXT.match(text, m.end())
                and self._is_word(word.lower())
            ):
                continue
            return True
        return False

    def _find_role_names(self, text: str, cands: list[Span]) -> None:
        """Names nothing found where a person stands (``detect.roles``), with the detector on."""
        if not _HAS_UPPER.search(text):
            return
        covered = [(c.start, c.end) for c in cands if c.score >= self.threshold(c.entity)]
        for s, e in find_role_names(text, covered, self._plain_word):
            if text[s:e] not in NOT_NAME:
                cands.append(Span(s, e, "PERSON", SPEAKER_SCORE, "roles"))

    def _is_word(self, lower: str) -> bool:
        words = self._words
        if lower in words:
            return True
        for suffix, repl in (
            ("ies", "y"),
            ("ied", "y"),
            ("ing", ""),
            ("ing", "e"),
            ("ed", ""),
            ("ed", "e"),
            ("es", ""),
            ("s", ""),
            ("d", ""),
        ):
            if lower.endswith(suffix) and lower[: -len(suffix)] + repl in words:
                return True
        return False

    def _find_ner(
        self, clean: list[str], found: list[list[Span]], wanted: set[str] | None, todo: list[int]
    ) -> None:
        owners: list[tuple[int, int]] = []
        pieces: list[str] = []
        for i in todo:
            text = clean[i]
            if not text or not _HAS_UPPER.search(text):
                continue
            for offset, piece in _pieces(text, NER_PIECE):
                owners.append((i, offset))
                pieces.append(piece)
        # memory_zone frees the strings and lexemes this batch added to the vocabulary, so a
        # long-lived worker's memory stays flat however many distinct tokens it sees.
        with self._nlp.memory_zone(), one_blas_thread():
            for (i, offset), doc in zip(
                owners, self._nlp.pipe(pieces, batch_size=512), strict=True
            ):
                self._collect(doc, i, offset, found, wanted)

    def _needs_model(self, text: str, cands: list[Span]) -> bool:
        """Whether the trained detector can add anything: a capitalised word the rules leave
        unexplained (as for the stock NER), a word with a digit no finding covers (an
        identifier, a time, a house number), or a lower-case chat turn's speaker or
        greeting ("irmela: no it wasnt me"). Text the rules explain whole is not run."""
        if not text.strip():
            return False
        if self._needs_ner(text, cands):
            return True
        covered = [
            (c.start, c.end)
            for c in cands
            if c.score >= self.threshold(c.entity) and c.source != "model"
        ]
        for m in _DIGIT_WORD.finditer(text):
            word = m.group()
            if len(word) < 5 and word.isdigit():
                continue  # "ending in 5943": no identifier the detector may report is this short
            if not any(s <= m.start() and m.end() <= e for s, e in covered):
                return True
        return _LOWER_SPEAKER.search(text) is not None

    def _find_learned(
        self,
        clean: list[str],
        found: list[list[Span]],
        wanted: set[str] | None,
        todo: list[int],
    ) -> None:
        """The trained detector over the texts ``todo`` (in pieces past ``NER_PIECE``)."""
        owners: list[tuple[int, int]] = []
        pieces: list[str] = []
        for i in todo:
            text = clean[i]
            for offset, piece in _pieces(text, NER_PIECE):
                owners.append((i, offset))
                pieces.append(piece)
        with self._detector.memory_zone(), one_blas_thread():
            for (i, offset), doc in zip(
                owners, self._detector.pipe(pieces, batch_size=512), strict=True
            ):
                for ent in doc.ents:
                    if wanted is not None and ent.label_ not in wanted:
                        continue
                    for start, end in _within_lines(doc.text, ent.start_char, ent.end_char):
                        entity = ent.label_
                        span = self._learned_span(doc.text[start:end], start, end, entity)
                        if span is not None and entity in IDENTIFIER_ENTITIES:
                            span = span if _named_nearby(doc.text, *span) else None
                        if span is None:
                            continue
                        s, e = span
                        if entity == "LOCATION" and person_role(doc.text, s, e):
                            entity = "PERSON"  # "registered to Hoàng Dương"
                        found[i].append(Span(s + offset, e + offset, entity, MODEL_SCORE, "model"))

    def _learned_span(self, text: str, start: int, end: int, entity: str) -> tuple[int, int] | None:
        """A detector span held to what the stock NER's findings are held to, or None:
        edges trimmed of spaces and punctuation; an identifier needs 5+ characters with 2+
        digits (an e-mail its ``@``, a URL a dot), so "ticket 10" holds none; a name or place
        loses lead role words, a possessive and, for a name, capitalised dictionary words
        before it that the name lists do not hold ("Yesterday"); a name with a digit or
        ``@/#`` is a code, and a name or place made only of dictionary words the lists do not
        hold ("Target", no house number) is not reported."""
        lead_cut = len(text) - len(text.lstrip(_EDGE))
        start, text = start + lead_cut, text[lead_cut:]
        tail = text.rstrip(_EDGE + ".")
        end, text = end - (len(text) - len(tail)), tail
        if len(text) < 2:
            return None
        if entity in _FREE_ENTITIES:
            if entity == "AGE_OVER_89" and not text.isdigit():
                return None
            if _UNIT.search(text):
                return None  # "HbA1c 8.2%": a lab value, not a date
            return start, end
        if entity not in ("PERSON", "LOCATION"):
            if entity == "EMAIL_ADDRESS":
                ok = "@" in text
            elif entity == "URL":
                ok = "." in text or "/" in text
            elif entity == "PHONE_NUMBER":
                ok = _phone_shaped(text)
            else:
                ok = len(text) >= 5 and sum(c.isdigit() for c in text) >= 2
            return (start, end) if ok else None
        if entity == "PERSON":
            lead = _LEAD_ROLES.match(text)
            if lead:
                start, text = start + lead.end(), text[lead.end() :]
            if text.endswith(("'s", "’s")):
                end, text = end - 2, text[:-2]
            if any(c.isdigit() or c in "@/\\#" for c in text):
                return None
            while True:
                m = _FIRST_WORD.match(text)
                if m is None or not self._plain_word(m.group(1)):
                    break
                start, text = start + m.end(), text[m.end() :]
            given = self._names[0]
            if self._words and all(
                w not in given and w not in AMBIGUOUS_GIVEN and self._is_word(w.lower())
                for w in _NAME_WORDS.findall(text)
            ):
                return None  # "Good morning", "What": English words, no given name among them
        elif _MEASURE.search(text):
            return None  # "K+ 4.9 mmol/L": a measurement, not an address
        if len(text) < 2 or text in NOT_NAME:
            return None
        if not any(c.isdigit() for c in text) and all(
            self._plain_word(w) for w in _NAME_WORDS.findall(text)
        ):
            return None  # an address has its house number; a bare word is a word
        return start, end

    def _sentence_word(self, text: str, c: Span) -> bool:
        """A weak one-word name guess that is an English word opening a sentence before a
        lower-case word or "I": "Can I have ...", "Good morning"."""
        word = text[c.start : c.end]
        return (
            " " not in word
            and self._is_word(word.lower())
            and _opens_sentence(text, c.start)
            and _LOWER_OR_I.match(text, c.end) is not None
        )

    def _plain_word(self, word: str) -> bool:
        """A dictionary word the name lists do not hold ("Yesterday", "Target")."""
        given, surnames = self._names
        return (
            word not in given
            and word not in surnames
            and bool(self._words)
            and self._is_word(word.lower())
        )

    def _collect(
        self, doc: Any, i: int, offset: int, found: list[list[Span]], wanted: set[str] | None
    ) -> None:
        for ent in doc.ents:
            entity = NER_LABELS.get(ent.label_)
            if entity is None or (wanted is not None and entity not in wanted):
                continue
            span = self._ner_span(ent.text, ent.start_char, ent.end_char, entity)
            if span is not None:
                s, e = span
                found[i].append(Span(s + offset, e + offset, entity, NER_SCORE, "ner"))

    @staticmethod
    def _ner_span(text: str, start: int, end: int, entity: str) -> tuple[int, int] | None:
        if entity == "DATE_TIME":
            return (start, end) if _DATE_EVIDENCE.search(text) else None
        if not text[:1].isupper() and not text[:1].isdigit():
            if text.lower().startswith("the "):
                start, text = start + 4, text[4:]
            if not text[:1].isupper():
                return None
        if any(c.isdigit() or c in "@/\\#" for c in text):
            return None  # codes and references, not names or places
        if entity == "PERSON":
            lead = _LEAD_ROLES.match(text)
            if lead:
                start, text = start + lead.end(), text[lead.end() :]
            if text.endswith(("'s", "’s")):
                end, text = end - 2, text[:-2]
        if not text or text in NOT_NAME or len(text) < 2:
            return None
        return start, end

    def _finish(self, text: str, cands: list[Span]) -> list[Span]:
        kept: list[Span] = []
        allow = self._allow
        # A name guess that a place rule (street address, postcode + city, country) calls a
        # place is a place: "28813 Derek Drive", "45923 Rastatt".
        places = [
            (c.start, c.end)
            for c in cands
            if c.entity == "LOCATION"
            and c.score >= 0.8
            and (
                c.source == "places"
                # the detector's postal address (it has a number): "Avda. Isidora Martínez 52"
                or (c.source == "model" and any(ch.isdigit() for ch in text[c.start : c.end]))
            )
        ]
        # A weekday or date the patterns found is not a name the NER model saw in it ("Fri").
        dates = [
            (c.start, c.end)
            for c in cands
            if c.entity == "DATE_TIME" and c.source != "ner" and c.score >= self.threshold(c.entity)
        ]
        # The trained detector fills what the rules leave: where a pattern or rule found
        # another entity, a checksum, a context word or a list stands behind it, and the
        # model's guess over it does not take it away (same-entity findings still merge).
        ruled = [
            (c.start, c.end, c.entity)
            for c in cands
            if c.source not in _LEARNED and c.score >= self.threshold(c.entity)
        ]
        # A number its context word names ("MRN 564751016-564") is that identifier, not a
        # card that passes Luhn by chance, unless it is grouped the way cards are printed.
        named = [(c.start, c.end) for c in cands if c.source == "context_id"]
        for c in cands:
            if c.score < self.threshold(c.entity):
                continue
            if (
                c.entity == "CREDIT_CARD"
                and any(s <= c.start and c.end <= e for s, e in named)
                and not card_grouped(text[c.start : c.end])
            ):
                continue
            if c.source == "model" and any(
                s < c.end and c.start < e and entity != c.entity for s, e, entity in ruled
            ):
                continue
            if (
                c.source in _LEARNED
                and c.entity != "DATE_TIME"
                and any(s <= c.start and c.end <= e for s, e in dates)
            ):
                continue
            if allow and text[c.start : c.end].strip().casefold() in allow:
                continue
            if c.source == "names" and c.score < 0.6 and self._sentence_word(text, c):
                continue
            if (c.entity == "ZIP_CODE" or c.source in _LEARNED) and any(
                s <= c.start and c.end <= e and e - s > c.end - c.start for s, e in places
            ):
                # A postcode inside a postal address is part of it, and so is what the NER
                # model makes of its pieces ("NSW 2000" as a date).
                continue
            if (
                c.entity == "PERSON"
                and c.score < 0.9
                and any(
                    s < c.end
                    and c.start < e
                    and not (c.start <= s and e <= c.end and e - s < c.end - c.start)
                    for s, e in places
                )
            ):
                # ... unless the place is only one word of the name: "Virginia Campbell",
                # "Rose Jordan" are people whatever the place lists say.
                continue
            kept.append(c)
        return _join_addresses(text, resolve(kept))


def _within_lines(text: str, start: int, end: int) -> Iterator[tuple[int, int]]:
    """A detector span cut at line breaks and " | " field separators: no name, place or
    identifier runs across them ("... 72166 Bakar | Recipient: Mubina Yunusov, ...")."""
    for m in _LINE_BREAK.finditer(text, start, end):
        yield start, m.start()
        start = m.end()
    yield start, end


def _named_nearby(text: str, start: int, end: int) -> bool:
    """Whether a context word of the identifier entities stands in or just before
    ``text[start:end]`` ("MRN1234567", "chart no. 44-1932"): a detector identifier needs the
    evidence a rule's would, so "Order #437991" is no record number."""
    trigger, _ = identifier_phrases()
    if trigger.search(text[max(0, start - 40) : start].lower()):
        return True
    joined = _ID_PREFIX.match(text, start, end)
    return joined is not None and trigger.fullmatch(joined.group(1).lower()) is not None


_ID_PREFIX = re.compile(r"([A-Za-z]{2,6})[-#:]?\d")


#: A word with a digit in it (an identifier, a time, a house number, an amount), without
#: the punctuation that ends its sentence.
_DIGIT_WORD = re.compile(r"[\w/.:#-]*\d(?:[\w/.:#-]*\w)?")
#: A lower-case name as a chat turn's speaker or after a greeting or "it's"/"this is".
_LOWER_SPEAKER = re.compile(
    r"(?:^|\n)[a-z][a-z'-]{1,20}:|\b(?:hi|hey|hello|thanks|it's|its|this is|i'm|im)[ ,]+[a-z]",
)
#: Characters trimmed from the edges of a detector span.
_EDGE = " \t\n,;:\"'“”‘’()[]-–—"
#: Detector entities taken as found once trimmed (their shapes vary too much to check).
_FREE_ENTITIES = frozenset({"DATE_TIME", "AGE_OVER_89"})
_FIRST_WORD = re.compile(r"([^\W\d_][\w'’-]*)\s+(?=\S)")
_NAME_WORDS = re.compile(r"[^\W\d_][\w'’-]*")

#: A unit of measure, and with a decimal number what a lab value has and a place never has.
_UNIT = re.compile(r"\b(?i:mmol|µmol|umol|mg|mcg|ml|dl|g/l|g/dl|mmhg|bpm|iu|kg|°c|°f)\b|%")
_MEASURE = re.compile(rf"\d[.,]\d|{_UNIT.pattern}")
#: Digits of a phone number set apart as phones are: "+45 1234 5678", "(030) 12345",
#: "0812345678", or eight or more of them ("46244845": Danish and Norwegian numbers); a
#: bare run of seven is more often a reference or an order number.
_PHONE_SHAPE = re.compile(r"^(?:\+|00|\(|0\d{8})|\d[ ./-]+\d")


def _phone_shaped(text: str) -> bool:
    digits = sum(c.isdigit() for c in text)
    return 7 <= digits <= 15 and (_PHONE_SHAPE.search(text) is not None or digits >= 8)


#: Sources of statistical findings: spaCy's stock NER and the project's trained detector.
_LEARNED = frozenset({"ner", "model"})

_ADDRESS_GAP = re.compile(r"[ ]?,?[ ]{1,2}|[ ]*\n[ ]*")


def _join_addresses(text: str, spans: list[Span]) -> list[Span]:
    """A place and the postcode right next to it are one address ("London NW1 6XE",
    "10115 Berlin"): the postcode joins the place's LOCATION span."""
    if len(spans) < 2:
        return spans
    out: list[Span] = []
    for s in spans:
        last = out[-1] if out else None
        if (
            last is not None
            and {last.entity, s.entity} == {"LOCATION", "ZIP_CODE"}
            and _ADDRESS_GAP.fullmatch(text, last.end, s.start)
        ):
            out[-1] = Span(last.start, s.end, "LOCATION", max(last.score, s.score), last.source)
        else:
            out.append(s)
    return out


@lru_cache(maxsize=4)
def _cached(settings_json: str, use_ner: bool) -> Scanner:
    return Scanner(DetectionSettings.model_validate_json(settings_json), use_ner=use_ner)


def scanner_for(settings: DetectionSettings | None = None, *, use_ner: bool = True) -> Scanner:
    """The process-wide scanner for these settings (built once, then reused)."""
    s = settings or DetectionSettings()
    return _cached(s.model_dump_json(), use_ner)


# -- many texts, many processes ---------------------------------------------------------------

_worker: Scanner | None = None


def _init_worker(settings_json: str) -> None:
    global _worker
    _worker = _cached(settings_json, True)  # inherited through fork, or built once here


def _scan_in_worker(batch: list[object]) -> BatchScan:
    assert _worker is not None
    return _worker.scan(batch)


def _batches(texts: Iterable[object], size: int) -> Iterator[list[object]]:
    batch: list[object] = []
    for t in texts:
        batch.append(t)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


class ScanPool:
    """Worker processes that each hold one engine for their whole life.

    With the ``fork`` start method the engine is built once in the parent and inherited
    (copy-on-write), so workers start in milliseconds; otherwise each worker builds its own
    once at start-up. Never per batch, never per value."""

    def __init__(self, settings: DetectionSettings | None = None, workers: int = 2) -> None:
        import multiprocessing as mp
        from multiprocessing.context import BaseContext

        self.settings = settings or DetectionSettings()
        self.workers = workers
        payload = self.settings.model_dump_json()
        ctx: BaseContext
        if "fork" in mp.get_all_start_methods():
            ctx = mp.get_context("fork")
            _cached(payload, True)
        else:  # pragma: no cover - not on Linux
            ctx = mp.get_context()
        self._pool = ctx.Pool(workers, initializer=_init_worker, initargs=(payload,))

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._pool.terminate()
        self._pool.join()

    def scan_stream(self, texts: Iterable[object], batch_size: int = 512) -> Iterator[BatchScan]:
        """Results in input order; at most ``2 × workers`` batches in flight, so memory
        stays bounded whatever the input size."""
        pending: list[Any] = []
        for batch in _batches(texts, batch_size):
            pending.append(self._pool.apply_async(_scan_in_worker, (batch,)))
            if len(pending) >= 2 * self.workers:
                yield pending.pop(0).get()
        for job in pending:
            yield job.get()


def scan_stream(
    texts: Iterable[object],
    settings: DetectionSettings | None = None,
    *,
    workers: int = 1,
    batch_size: int = 512,
) -> Iterator[BatchScan]:
    """Scan an iterable of texts in batches, in order, on ``workers`` processes (see
    ``ScanPool``); memory stays bounded whatever the input size."""
    if workers <= 1:
        scanner = scanner_for(settings)
        for batch in _batches(texts, batch_size):
            yield scanner.scan(batch)
        return
    with ScanPool(settings, workers) as pool:
        yield from pool.scan_stream(texts, batch_size)


__all__ = ["ENTITIES", "BatchScan", "ScanPool", "Scanner", "scan_stream", "scanner_for"]
