"""The policy's ``risk:`` and ``releases:`` sections.

``risk:`` — k / l / t are enforced by ``privacy:``; this adds the estimates a privacy engineer
tracks over time (prosecutor risk, a linkage attack) and the thresholds the gate holds them to.

``releases:`` — differentially private aggregates (counts, sums, means, histograms) of the
source, grouped by declared values, each with its ε (and δ for the Gaussian mechanism).
The dataset's total budget is not in the policy: it is kept in ``governance`` and set by an
admin (``veilflow budget set``), so whoever writes a policy cannot raise it.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from veilflow.policy.names import IDENT, NAME_RULE, identifier


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RiskSettings(_Strict):
    """Thresholds on the re-identification risk of what a run would publish."""

    #: A record is at risk when its equivalence class is smaller than this (default: the
    #: ``privacy.k`` the gate enforces). Set it above ``privacy.k`` to watch a stricter line.
    k: int | None = Field(default=None, ge=1)
    #: Refuse a run whose share of published records in classes smaller than ``k`` exceeds this.
    max_prosecutor_risk: float | None = Field(default=None, ge=0.0, le=1.0)
    #: Refuse a run where more than this share of an attacker's auxiliary records (the
    #: source's quasi-identifiers) matches exactly one published record.
    max_linkage_risk: float | None = Field(default=None, ge=0.0, le=1.0)
    #: Source records the linkage attack takes as the attacker's auxiliary table (0 = all).
    linkage_sample: int = Field(default=10_000, ge=0)


#: Group key values a release declares: the public domain of a grouping column. Rows whose
#: value is not declared are left out of every cell; declared values without rows get a
#: noisy zero. Neither the keys present nor their absence is read from the data.
GroupKey = str | int | bool


class ReleaseSpec(_Strict):
    """One differentially private aggregate, written to the anonymized zone as a table."""

    name: str
    statistic: Literal["count", "sum", "mean", "histogram"]
    #: The measured column (sum, mean, histogram); counts count rows.
    column: str | None = None
    #: Grouping columns and their declared values (the cells of the release).
    group_by: dict[str, list[GroupKey]] = Field(default_factory=dict)
    #: Clipping bounds of ``column`` for sum and mean: they fix the sensitivity.
    bounds: tuple[float, float] | None = None
    #: Bin edges of a histogram of ``column`` (numeric, increasing); values outside are
    #: left out, as are NULLs.
    bins: list[float] | None = None
    epsilon: float = Field(gt=0.0, le=10.0)
    #: Only with the Gaussian mechanism, which needs it.
    delta: float = Field(default=0.0, ge=0.0, lt=1e-3)
    mechanism: Literal["laplace", "gaussian"] = "laplace"
    #: The release's table (default ``anonymized.<dataset>_<name>``).
    table: str | None = None

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        return identifier(v, NAME_RULE)

    @field_validator("group_by")
    @classmethod
    def _groups(cls, v: dict[str, list[GroupKey]]) -> dict[str, list[GroupKey]]:
        for column, keys in v.items():
            if not keys:
                raise ValueError(f"group_by {column!r}: declare its values (at least one)")
            if len(set(map(str, keys))) != len(keys):
                raise ValueError(f"group_by {column!r}: a value is declared twice")
        return v

    @field_validator("table")
    @classmethod
    def _table(cls, v: str | None) -> str | None:
        if v is None:
            return v
        parts = v.split(".")
        if len(parts) != 2 or parts[0] != "anonymized" or not all(IDENT.match(p) for p in parts):
            raise ValueError("expected 'anonymized.<table>' in lower-case SQL identifiers")
        return v

    @model_validator(mode="after")
    def _shape(self) -> ReleaseSpec:
        s = self.statistic
        if s != "count" and self.column is None:
            raise ValueError(f"a {s} release needs the column it measures")
        if s in ("sum", "mean"):
            if self.bounds is None:
                raise ValueError(f"a {s} release needs bounds: [lower, upper] to clip to")
            if not self.bounds[0] < self.bounds[1]:
                raise ValueError("bounds: lower must be below upper")
        elif self.bounds is not None:
            raise ValueError(f"bounds are for sum and mean, not {s}")
        if s == "histogram":
            if not self.bins or len(self.bins) < 2:
                raise ValueError("a histogram needs bins: at least two increasing edges")
            if any(b >= a for a, b in zip(self.bins[1:], self.bins, strict=False)):
                raise ValueError("bins must increase")
        elif self.bins is not None:
            raise ValueError(f"bins are for histograms, not {s}")
        if self.mechanism == "gaussian" and self.delta == 0.0:
            raise ValueError("the gaussian mechanism needs delta > 0")
        if self.mechanism == "laplace" and self.delta != 0.0:
            raise ValueError("delta is for the gaussian mechanism; the laplace one has none")
        return self

    def table_for(self, dataset: str) -> str:
        return self.table or f"anonymized.{dataset}_{self.name}"[: len("anonymized.") + 63]


class UtilitySettings(_Strict):
    """What anonymization costs a model: the same scikit-learn model trained on the raw
    source and on the masked table, scored on the same held-out records of each."""

    #: The column the model predicts (categorical; published by the policy).
    target: str
    #: The columns it learns from (declared, published by the policy).
    features: list[str] = Field(min_length=1)
    model: Literal["logistic_regression", "random_forest"] = "logistic_regression"
    #: Records sampled for the report (every n-th; 0 = all) and the held-out share.
    sample: int = Field(default=20_000, ge=0)
    test_share: float = Field(default=0.3, gt=0.0, lt=1.0)
    seed: int = 0


class SyntheticSettings(_Strict):
    """A synthetic copy of the masked candidate (a Gaussian copula), through its own gate."""

    #: The published columns it synthesizes (declared, not dropped).
    columns: list[str] = Field(min_length=1)
    #: Rows to generate (0 = as many as are published).
    rows: int = Field(default=0, ge=0)
    seed: int = 0
    #: The table (default ``anonymized.<dataset>_synthetic``).
    table: str | None = None
    #: A synthetic record closer than this (Gower distance, 0..1: the mean over the columns
    #: of 0/1 for categories and |a - b| / range for numbers) to a record it was fitted on
    #: counts as too close. On generalized columns most categories repeat: the default asks
    #: for identical categories and numbers within 0.1% of their range over 5 columns ...
    min_distance: float = Field(default=0.0002, ge=0.0, le=1.0)
    #: ... and the gate refuses the table when more than this share of them is too close.
    max_close_share: float = Field(default=0.02, ge=0.0, le=1.0)
    #: Synthetic records whose distance is measured (against up to 20x as many source ones).
    distance_sample: int = Field(default=1000, ge=10)
    #: Drop sampled rows that copy a record exactly before the gate (which still checks).
    drop_copies: bool = True

    def table_for(self, dataset: str) -> str:
        return self.table or f"anonymized.{dataset}_synthetic"
