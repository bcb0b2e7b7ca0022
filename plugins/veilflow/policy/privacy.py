"""The policy's ``privacy:`` and ``validation:`` sections: what the gate enforces."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from veilflow.policy.entities import IDENTIFIER_ENTITIES

#: Entity types the residual-PII rescan counts by default: the identifying ones, each of the
#: HIPAA Safe Harbor identifiers that names a person or a thing of theirs (records, accounts,
#: plans, licences, vehicles, devices, biometrics, photos, web addresses). Places, dates,
#: postcodes and ages over 89 are left to the quasi-identifier risk measures.
RESCAN_ENTITIES = (
    "PERSON",
    "EMAIL_ADDRESS",
    "PHONE_NUMBER",
    "US_SSN",
    "CREDIT_CARD",
    "IBAN_CODE",
    "IP_ADDRESS",
    "US_BANK_NUMBER",
    "URL",
    *IDENTIFIER_ENTITIES,
    "PHOTO_FILE",
)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PrivacySettings(_Strict):
    """Re-identification risk limits on the declared quasi-identifiers."""

    quasi_identifiers: list[str] = Field(default_factory=list)
    k: int = Field(default=1, ge=1)
    sensitive: str | None = None
    l: int | None = Field(default=None, ge=1)  # noqa: E741 - the name used in the literature
    t: float | None = Field(default=None, gt=0.0, le=1.0)
    #: Ground distance of t-closeness: ``ordered`` for numeric/temporal sensitive values,
    #: ``equal`` for categories; ``auto`` decides from the column's type.
    distance: Literal["auto", "equal", "ordered"] = "auto"
    on_violation: Literal["fail", "suppress"] = "fail"
    #: Upper bound on the share of rows ``suppress`` may remove before the gate fails.
    max_suppression: float = Field(default=0.05, ge=0.0, le=1.0)


class ValidationSettings(_Strict):
    """Leak tests the gate runs on every candidate."""

    #: Residual PII findings tolerated in free-text / unlisted output columns.
    residual_pii_max: int = Field(default=0, ge=0)
    #: Synthetic canary records planted by extract (never published).
    canaries: int = Field(default=0, ge=0)
    #: Output columns the rescan reads; default: scrubbed free text and kept text columns.
    rescan_columns: list[str] | None = None
    #: Entity types the rescan counts.
    rescan_entities: list[str] = Field(default_factory=lambda: list(RESCAN_ENTITIES))
    #: Rows sampled for the rescan (0 = every row).
    rescan_rows: int = Field(default=5000, ge=0)
    #: Write Great Expectations Data Docs (HTML) for every run.
    data_docs: bool = True
