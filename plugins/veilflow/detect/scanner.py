"""The free-text scanner: finds PII spans in many texts at once.

Per batch: texts are joined with NUL separators and every pattern recognizer and
name/place rule runs once over the joined string; the project's trained detector
(``detect.model``, when one is in force) runs over the texts the rules leave something
unexplained in (``detect.unexplained``), and spaCy's stock model runs only its NER component,
through ``nlp.pipe`` over the texts that need it. Model findings are held to the shapes of
``detect.learned_spans``; all findings are then filtered (allow list, per-entity thresholds)
and resolved into non-overlapping spans per text (``detect.findings``). One ``Scanner`` per
process (``scanner_for``), so model start-up happens once per worker; many texts on many
processes are ``detect.scan_pool``'s.

A value that cannot be scanned (not decodable as UTF-8, larger than ``max_text_chars``)
is reported as unscannable (``detect.scan_input``); callers redact it and count it, never
pass it through.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import numpy as np

from veilflow.detect.dates import DATE_PATTERNS
from veilflow.detect.engine import english_words, load_nlp
from veilflow.detect.findings import keep_findings
from veilflow.detect.gazetteers import NOT_NAME, cities, gazetteers
from veilflow.detect.identifiers import SHAPED, find_identifiers
from veilflow.detect.learned_spans import (
    NER_LABELS,
    NER_SCORE,
    learned_span,
    named_nearby,
    ner_span,
    small_words,
    within_lines,
)
from veilflow.detect.locators import LOCATOR_PATTERNS
from veilflow.detect.matmul import Matmul, one_blas_thread
from veilflow.detect.model import MODEL_SCORE, DetectorRef, load_detector
from veilflow.detect.model import resolve as resolve_detector
from veilflow.detect.patterns import PATTERNS
from veilflow.detect.roles import entity_by_role, field_label, find_role_names, person_role
from veilflow.detect.rules import find_names, find_places
from veilflow.detect.scan_input import normalize, pieces
from veilflow.detect.spans import ENTITIES, Span, without_edges
from veilflow.detect.speakers import find_lower_names
from veilflow.detect.text_pattern import SEP, TextPattern, words
from veilflow.detect.unexplained import HAS_LETTER, needs_model, needs_ner
from veilflow.detect.vocabulary import Vocabulary
from veilflow.policy.detection import DetectionSettings
from veilflow.policy.entities import IDENTIFIER_ENTITIES

log = logging.getLogger(__name__)

#: A lower-case name in a chat position (``veilflow.detect.speakers``): a rule, but a guess.
SPEAKER_SCORE = 0.75
#: Texts longer than this go through NER in pieces (cut at whitespace).
NER_PIECE = 20_000


@dataclass
class BatchScan:
    """Spans per text (sorted, non-overlapping) and which texts could not be scanned."""

    spans: list[list[Span]]
    unscannable: list[int] = field(default_factory=list)
    reasons: dict[int, str] = field(default_factory=dict)


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
        words: frozenset[str] = frozenset()
        self.detector: DetectorRef | None = None
        self._detector: Any = None
        if use_ner:
            self._nlp = load_nlp(self.settings.model, matmul)
            # The lemma tables hold no function words ("what", "the"): spaCy's stop words do.
            from spacy.lang.en.stop_words import STOP_WORDS

            words = english_words(self.settings.model) | STOP_WORDS
            self.detector = detector or resolve_detector(self.settings.detector)
            if self.detector is not None:
                self._detector = load_detector(str(self.detector.model_path), matmul)
        g = gazetteers()
        self.vocabulary = Vocabulary(words, g.given, g.surnames)
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
            text, reason = normalize(value, limit)
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
        vocabulary = self.vocabulary
        if vocabulary.words and (wanted is None or "PERSON" in wanted):
            for i, text in enumerate(clean):
                for s, e in find_lower_names(text, vocabulary.is_word):
                    found[i].append(Span(s, e, "PERSON", SPEAKER_SCORE, "speakers"))
        if self._detector is not None and self.detector is not None:
            learned = set(self.detector.entities)
            if wanted is None or wanted & learned:
                todo = [
                    i
                    for i, t in enumerate(clean)
                    if needs_model(t, found[i], self.threshold, vocabulary)
                ]
                self._find_learned(clean, found, wanted, todo)
                if vocabulary.words and (wanted is None or "PERSON" in wanted):
                    # Texts the rules explain whole hold no word left for a name either.
                    for i in todo:
                        self._find_role_names(clean[i], found[i])
        if self.use_ner and (wanted is None or wanted & {"PERSON", "LOCATION", "DATE_TIME"}):
            todo = (
                [
                    i
                    for i, t in enumerate(clean)
                    if needs_ner(t, found[i], self.threshold, vocabulary)
                ]
                if self.settings.ner == "auto"
                else list(range(len(clean)))
            )
            self._find_ner(clean, found, wanted, todo)
        for i, cands in enumerate(found):
            if cands:
                result.spans[i] = keep_findings(
                    clean[i], cands, self.threshold, self._allow, vocabulary
                )
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
        """Whether the stock NER can add a name or place here (``detect.unexplained``)."""
        return needs_ner(text, cands, self.threshold, self.vocabulary)

    def _find_role_names(self, text: str, cands: list[Span]) -> None:
        """Names nothing found where a person stands (``detect.roles``), with the detector on."""
        if not HAS_LETTER.search(text):
            return
        covered = [(c.start, c.end) for c in cands if c.score >= self.threshold(c.entity)]
        for s, e in find_role_names(text, covered, self.vocabulary.plain_word):
            if text[s:e] not in NOT_NAME:
                cands.append(Span(s, e, "PERSON", SPEAKER_SCORE, "roles"))

    def _find_ner(
        self, clean: list[str], found: list[list[Span]], wanted: set[str] | None, todo: list[int]
    ) -> None:
        owners: list[tuple[int, int]] = []
        texts: list[str] = []
        for i in todo:
            text = clean[i]
            if not text or not HAS_LETTER.search(text):
                continue
            for offset, piece in pieces(text, NER_PIECE):
                owners.append((i, offset))
                texts.append(piece)
        # memory_zone frees the strings and lexemes this batch added to the vocabulary, so a
        # long-lived worker's memory stays flat however many distinct tokens it sees.
        with self._nlp.memory_zone(), one_blas_thread():
            for (i, offset), doc in zip(owners, self._nlp.pipe(texts, batch_size=512), strict=True):
                for ent in doc.ents:
                    entity = NER_LABELS.get(ent.label_)
                    if entity is None or (wanted is not None and entity not in wanted):
                        continue
                    for s, e in self._ner_spans(doc.text, ent.start_char, ent.end_char, entity):
                        kind = entity_by_role(doc.text, s, e, entity)  # "Hi Naira", "in Béni Saf"
                        found[i].append(Span(s + offset, e + offset, kind, NER_SCORE, "ner"))

    def _ner_spans(self, text: str, start: int, end: int, entity: str) -> Iterator[tuple[int, int]]:
        """A stock NER span as reported (``learned_spans.ner_span``), cut at line breaks like
        the detector's; a piece of a cut span is held to what the detector's are
        ("Tébessa\nDate of birth" is no name)."""
        pieces = list(within_lines(text, start, end))
        for s, e in pieces:
            if field_label(text, *without_edges(text, s, e)):
                continue
            span = ner_span(text[s:e], s, e, entity)
            if span is not None and len(pieces) > 1:
                span = self._learned_span(text[span[0] : span[1]], *span, entity)
            if span is not None:
                yield span

    def _find_learned(
        self,
        clean: list[str],
        found: list[list[Span]],
        wanted: set[str] | None,
        todo: list[int],
    ) -> None:
        """The trained detector over the texts ``todo`` (in pieces past ``NER_PIECE``)."""
        owners: list[tuple[int, int]] = []
        texts: list[str] = []
        for i in todo:
            for offset, piece in pieces(clean[i], NER_PIECE):
                owners.append((i, offset))
                texts.append(piece)
        with self._detector.memory_zone(), one_blas_thread():
            for (i, offset), doc in zip(
                owners, self._detector.pipe(texts, batch_size=512), strict=True
            ):
                for ent in doc.ents:
                    if wanted is not None and ent.label_ not in wanted:
                        continue
                    for start, end in within_lines(doc.text, ent.start_char, ent.end_char):
                        entity = ent.label_
                        if entity in ("PERSON", "LOCATION") and field_label(
                            doc.text, *without_edges(doc.text, start, end)
                        ):
                            continue  # "Date of birth: ..."
                        span = self._learned_span(doc.text[start:end], start, end, entity)
                        if span is not None and entity in IDENTIFIER_ENTITIES:
                            span = span if named_nearby(doc.text, *span) else None
                        if span is None:
                            continue
                        s, e = span
                        if (
                            entity in ("PERSON", "LOCATION")
                            and small_words(doc.text, s, e)
                            and not person_role(doc.text, s, e)
                        ):
                            continue  # "Gjorche: nope", "confirmed: amlodipine", not "9, rue"
                        entity = entity_by_role(doc.text, s, e, entity)
                        found[i].append(Span(s + offset, e + offset, entity, MODEL_SCORE, "model"))

    def _learned_span(self, text: str, start: int, end: int, entity: str) -> tuple[int, int] | None:
        """A detector span as reported, or None (``detect.learned_spans``)."""
        return learned_span(text, start, end, entity, self.vocabulary)


@lru_cache(maxsize=4)
def scanner_for_json(settings_json: str, use_ner: bool) -> Scanner:
    """The process-wide scanner for these settings, given as JSON (built once, then reused)."""
    return Scanner(DetectionSettings.model_validate_json(settings_json), use_ner=use_ner)


def scanner_for(settings: DetectionSettings | None = None, *, use_ner: bool = True) -> Scanner:
    """The process-wide scanner for these settings (built once, then reused)."""
    s = settings or DetectionSettings()
    return scanner_for_json(s.model_dump_json(), use_ner)


__all__ = ["ENTITIES", "BatchScan", "Scanner", "scanner_for"]
