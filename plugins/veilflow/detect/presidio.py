"""veilflow's recognizers behind Presidio's ``EntityRecognizer`` interface, so an
``AnalyzerEngine`` (``build_analyzer``) reports what the veilflow scanner's patterns and
name/place rules find."""

from __future__ import annotations

from typing import Any

from presidio_analyzer import (
    AnalyzerEngine,
    EntityRecognizer,
    RecognizerRegistry,
    RecognizerResult,
)
from presidio_analyzer.nlp_engine import SpacyNlpEngine

from veilflow.detect.engine import load_nlp
from veilflow.detect.offline import ensure_offline
from veilflow.detect.scanner import Scanner
from veilflow.detect.spans import ENTITIES
from veilflow.policy.detection import DetectionSettings


class VeilflowRecognizer(EntityRecognizer):
    """Patterns (validated cards, IBANs, phones, ...) and name/place rules; no NER of its
    own (the engine's NLP artifacts carry spaCy's)."""

    def __init__(self, settings: DetectionSettings | None = None) -> None:
        self._scanner = Scanner(settings, use_ner=False)
        entities = list(ENTITIES) + sorted(
            {r.entity for r in self._scanner.settings.recognizers}
            | {d.entity for d in self._scanner.settings.deny_lists}
        )
        super().__init__(
            supported_entities=entities,
            name="VeilflowRecognizer",
            supported_language=self._scanner.settings.language,
        )

    def load(self) -> None:
        """Nothing to load: patterns compile at construction."""

    def analyze(
        self, text: str, entities: list[str], nlp_artifacts: Any = None
    ) -> list[RecognizerResult]:
        wanted = set(entities) if entities else None
        spans = self._scanner.scan([text], entities=wanted).spans[0]
        return [RecognizerResult(s.entity, s.start, s.end, s.score) for s in spans]


def build_analyzer(settings: DetectionSettings) -> Any:
    """A Presidio ``AnalyzerEngine`` over the NER-only pipeline, with Presidio's predefined
    recognizers plus veilflow's pattern and name/place rules."""
    ensure_offline()
    engine = SpacyNlpEngine(models=[{"lang_code": settings.language, "model_name": settings.model}])
    engine.nlp = {settings.language: load_nlp(settings.model)}  # type: ignore[assignment]
    registry = RecognizerRegistry(supported_languages=[settings.language])
    registry.load_predefined_recognizers(languages=[settings.language], nlp_engine=engine)
    registry.add_recognizer(VeilflowRecognizer(settings))
    return AnalyzerEngine(
        nlp_engine=engine,
        registry=registry,
        supported_languages=[settings.language],
        default_score_threshold=settings.default_threshold,
    )
