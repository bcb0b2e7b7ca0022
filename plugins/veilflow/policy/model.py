"""Typed models of a policy file: one YAML per dataset, every source column declared."""

from __future__ import annotations

import hashlib
import json
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, field_validator, model_validator

from veilflow.policy.detection import DetectionSettings
from veilflow.policy.names import (
    COLUMN_RULE,
    IDENT,
    NAME_RULE,
    action_shorthand,
    identifier,
    identifier_keys,
)
from veilflow.policy.operators import OperatorConfig, operator_config
from veilflow.policy.privacy import PrivacySettings, ValidationSettings
from veilflow.policy.releases import (
    ReleaseSpec,
    RiskSettings,
    SyntheticSettings,
    UtilitySettings,
)

ROLES = ("pipeline", "steward", "ml_engineer", "auditor", "admin")
ZONES = ("restricted", "anonymized", "quarantine", "reidentify")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _qualified(value: str, zone: str) -> str:
    parts = value.split(".")
    if len(parts) != 2 or not all(IDENT.match(p) for p in parts):
        raise ValueError(f"expected '{zone}.<table>' in lower-case SQL identifiers")
    if parts[0] != zone:
        raise ValueError(f"must be in the {zone} zone ('{zone}.<table>')")
    return value


class _Table(_Strict):
    """A ``schema.table`` name, validated per zone by the subclass."""

    table: str

    @property
    def schema_name(self) -> str:
        return self.table.split(".")[0]

    @property
    def table_name(self) -> str:
        return self.table.split(".")[1]


class Source(_Table):
    key: str

    @field_validator("table")
    @classmethod
    def _zone(cls, v: str) -> str:
        return _qualified(v, "restricted")

    @field_validator("key")
    @classmethod
    def _key(cls, v: str) -> str:
        return identifier(v, COLUMN_RULE)


class Target(_Table):
    @field_validator("table")
    @classmethod
    def _zone(cls, v: str) -> str:
        return _qualified(v, "anonymized")


class Incremental(_Strict):
    """``incremental: {cursor: <column>}``: the source only grows, in the order of
    ``cursor`` (an id, a creation timestamp). A run takes only the rows past the cursor the
    last published run reached and appends them (ADR 0017); the first run is a full run."""

    cursor: str

    @field_validator("cursor")
    @classmethod
    def _cursor(cls, v: str) -> str:
        return identifier(v, COLUMN_RULE)


def nearest_line(lines: dict[tuple[str, ...], int], path: tuple[str, ...]) -> int | None:
    """The YAML line of ``path`` in ``lines``, or of its nearest declared parent."""
    for n in range(len(path), 0, -1):
        line = lines.get(path[:n])
        if line is not None:
            return line
    return None


def default_access() -> dict[str, list[str]]:
    """Who may read what when a policy says nothing (``access:``): ML engineers the
    anonymized zone, stewards every zone and re-identification."""
    return {
        "ml_engineer": ["anonymized"],
        "steward": ["restricted", "anonymized", "reidentify"],
    }


class ColumnSpec(BaseModel):
    """``action`` names an operator; every other key is that operator's parameter, validated
    by the operator's own config model (``veilflow.policy.operators``) as the policy loads:
    an unknown operator, an unknown parameter, a wrong type or a value out of range is an
    error at that field. ``params`` keeps the parameters as written (the policy hash is
    over them); ``config`` is them validated."""

    model_config = ConfigDict(extra="allow", frozen=True)

    action: str

    _config: OperatorConfig = PrivateAttr()

    @model_validator(mode="after")
    def _operator(self) -> ColumnSpec:
        self._config = operator_config(self.action, self.params)
        return self

    @property
    def params(self) -> dict[str, Any]:
        return dict(self.model_extra or {})

    @property
    def config(self) -> OperatorConfig:
        """The parameters, validated by the operator's config model."""
        return self._config


class Policy(_Strict):
    dataset: str
    description: str = ""
    schedule: str | None = "@daily"
    source: Source
    target: Target
    #: What to do with a source column the policy does not declare: stop the run (schema
    #: drift) or leave it out of the output.
    unlisted: Literal["fail", "drop"] = "fail"
    #: Rows per chunk (a key range); bounds memory whatever the table size.
    chunk_rows: int = Field(default=50_000, ge=100, le=2_000_000)
    #: Data keys are named by this scope (default: the dataset); policies that share a scope
    #: share keys, so their tokens and surrogates join.
    key_scope: str | None = None
    #: Append-only source: take only the rows past the last published cursor (ADR 0017).
    incremental: Incremental | None = None
    columns: dict[str, ColumnSpec]
    detection: DetectionSettings = DetectionSettings()
    privacy: PrivacySettings = PrivacySettings()
    validation: ValidationSettings = ValidationSettings()
    risk: RiskSettings = RiskSettings()
    releases: list[ReleaseSpec] = Field(default_factory=list)
    utility: UtilitySettings | None = None
    synthetic: SyntheticSettings | None = None
    access: dict[str, list[str]] = Field(default_factory=default_access)

    _file: str | None = PrivateAttr(default=None)
    _lines: dict[tuple[str, ...], int] = PrivateAttr(default_factory=dict)

    @field_validator("dataset")
    @classmethod
    def _dataset(cls, v: str) -> str:
        return identifier(v, NAME_RULE)

    @field_validator("columns", mode="before")
    @classmethod
    def _shorthand(cls, v: Any) -> Any:
        return action_shorthand(v)

    @field_validator("columns")
    @classmethod
    def _columns(cls, v: dict[str, ColumnSpec]) -> dict[str, ColumnSpec]:
        return identifier_keys(v, "column", "SQL identifier")

    @field_validator("access")
    @classmethod
    def _access(cls, v: dict[str, list[str]]) -> dict[str, list[str]]:
        for role, zones in v.items():
            if role not in ROLES:
                raise ValueError(f"unknown role {role!r}; roles are {', '.join(ROLES)}")
            for z in zones:
                if z not in ZONES:
                    raise ValueError(f"unknown zone {z!r} for {role}; zones are {', '.join(ZONES)}")
        return v

    @model_validator(mode="after")
    def _key_declared(self) -> Policy:
        if self.source.key not in self.columns:
            raise ValueError(f"the source key {self.source.key!r} must be declared in columns")
        for qi in self.privacy.quasi_identifiers:
            if qi not in self.columns:
                raise ValueError(f"quasi-identifier {qi!r} is not a declared column")
        if self.privacy.sensitive and self.privacy.sensitive not in self.columns:
            raise ValueError(f"sensitive column {self.privacy.sensitive!r} is not declared")
        if self.incremental and self.incremental.cursor not in self.columns:
            raise ValueError(
                f"incremental cursor {self.incremental.cursor!r} is not a declared column"
            )
        if self.utility is not None:
            for c in [self.utility.target, *self.utility.features]:
                spec = self.columns.get(c)
                if spec is None:
                    raise ValueError(f"utility: column {c!r} is not declared")
                if spec.action == "drop":
                    raise ValueError(f"utility: column {c!r} is dropped, not published")
            if self.utility.target in self.utility.features:
                raise ValueError("utility: the target cannot also be a feature")
        if self.synthetic is not None:
            for c in self.synthetic.columns:
                spec = self.columns.get(c)
                if spec is None or spec.action == "drop":
                    raise ValueError(f"synthetic: column {c!r} is not a published column")
            if self.synthetic.table_for(self.dataset) == self.target.table:
                raise ValueError("synthetic: the table would overwrite the target table")
        names: set[str] = set()
        for r in self.releases:
            for c in [*r.group_by, *([r.column] if r.column else [])]:
                if c not in self.columns:
                    raise ValueError(f"release {r.name!r}: column {c!r} is not declared")
            if r.name in names:
                raise ValueError(f"release {r.name!r} is declared twice")
            names.add(r.name)
            if r.table_for(self.dataset) == self.target.table:
                raise ValueError(f"release {r.name!r} would overwrite the target table")
        return self

    @property
    def file(self) -> str | None:
        return self._file

    @property
    def scope(self) -> str:
        return self.key_scope or self.dataset

    def line_of(self, *path: str) -> int | None:
        """The YAML line of ``path`` (e.g. ``("columns", "email", "keep_last")``), or of its
        nearest declared parent."""
        return nearest_line(self._lines, path)

    @property
    def hash(self) -> str:
        """A stable hash of what the policy means: formatting and comments do not change it."""
        meaning = self.model_dump(mode="json")
        if meaning.get("incremental") is None:
            # A full-run policy means what it meant before the field existed: same hash.
            meaning.pop("incremental", None)
        canonical = json.dumps(meaning, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()
