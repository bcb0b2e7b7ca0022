"""Typed models of a multi-table dataset policy: several source tables, the foreign keys
between them, and an optional subset that follows those keys (ADR 0023).

A dataset policy declares ``tables:`` instead of one ``source``/``target``. Each table is
planned, transformed and gated as a single-table ``Policy`` of its own (dataset
``<dataset>__<table>``), all under one key scope, so a key column and the foreign-key columns
that refer to it share one token key and purpose, and the tokens join. A foreign-key column
is anonymized exactly as the key it refers to: left out of ``columns``, it inherits the
parent key's declaration; declared, it must equal it.
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    field_validator,
    model_validator,
)

from veilflow.errors import PolicyError
from veilflow.policy.detection import DetectionSettings
from veilflow.policy.model import (
    ColumnSpec,
    Policy,
    Source,
    Target,
    default_access,
    nearest_line,
)
from veilflow.policy.names import (
    NAME_RULE,
    action_shorthand,
    identifier,
    identifier_keys,
)
from veilflow.policy.privacy import PrivacySettings, ValidationSettings
from veilflow.policy.releases import RiskSettings

#: Actions a key that foreign keys refer to may take: deterministic under the scope's
#: token key, the same value gives the same token in every table.
JOINABLE_KEY_ACTIONS = ("tokenize",)
#: Sections of a single-table policy that a dataset of several tables does not take yet,
#: and what each makes (docs/policy.md, "Datasets of several tables").
SINGLE_TABLE_ONLY = {
    "incremental": "incremental runs",
    "releases": "DP releases",
    "utility": "a utility report",
    "synthetic": "a synthetic table",
}
#: What a ``subset.where`` predicate may not hold: a second statement or a comment.
_UNSAFE_PREDICATE = re.compile(r";|--|/\*|\*/")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Subset(_Strict):
    """``subset: {table: customers, fraction: 0.1}`` or ``{table: customers, where: "..."}``:
    only these rows of ``table`` are published, and, following the foreign keys, only the
    rows of the tables below it that refer to them. A fraction is drawn by a hash of the key,
    so the same rows are drawn in every run."""

    table: str
    fraction: float | None = Field(default=None, gt=0, le=1)
    where: str | None = None

    @model_validator(mode="after")
    def _one(self) -> Subset:
        if (self.fraction is None) == (self.where is None):
            raise ValueError("give either fraction or where")
        if self.where is not None and (
            not self.where.strip() or _UNSAFE_PREDICATE.search(self.where)
        ):
            raise ValueError(
                "where is one SQL predicate on the table's columns (no ';', no comments)"
            )
        return self


class TableSpec(_Strict):
    """One table of a dataset: a single-table policy's table-level fields, plus the foreign
    keys of this table (``column: parent table``; the parent's key is referred to)."""

    source: Source
    target: Target
    unlisted: Literal["fail", "drop"] = "fail"
    chunk_rows: int = Field(default=50_000, ge=100, le=2_000_000)
    foreign_keys: dict[str, str] = Field(default_factory=dict)
    columns: dict[str, ColumnSpec]
    detection: DetectionSettings = DetectionSettings()
    privacy: PrivacySettings = PrivacySettings()
    validation: ValidationSettings = ValidationSettings()
    risk: RiskSettings = RiskSettings()

    @field_validator("columns", mode="before")
    @classmethod
    def _shorthand(cls, v: Any) -> Any:
        return action_shorthand(v)


class DatasetPolicy(_Strict):
    dataset: str
    description: str = ""
    schedule: str | None = "@daily"
    key_scope: str | None = None
    #: The table whose key names a data subject (erasure starts there). Default: the one
    #: table that refers to no other.
    subject: str | None = None
    subset: Subset | None = None
    tables: dict[str, TableSpec]
    access: dict[str, list[str]] = Field(default_factory=default_access)

    _file: str | None = PrivateAttr(default=None)
    _lines: dict[tuple[str, ...], int] = PrivateAttr(default_factory=dict)
    _policies: dict[str, Policy] | None = PrivateAttr(default=None)

    @field_validator("dataset")
    @classmethod
    def _dataset(cls, v: str) -> str:
        return identifier(v, NAME_RULE)

    @field_validator("tables")
    @classmethod
    def _tables(cls, v: dict[str, TableSpec]) -> dict[str, TableSpec]:
        return identifier_keys(v, "table", "identifier")

    @model_validator(mode="after")
    def _graph(self) -> DatasetPolicy:
        for kind in ("source", "target"):
            seen: dict[str, str] = {}
            for name, spec in self.tables.items():
                table = getattr(spec, kind).table
                if table in seen:
                    raise ValueError(
                        f"tables.{name}.{kind}: tables {seen[table]!r} and {name!r} share "
                        f"the {kind} {table}"
                    )
                seen[table] = name
        for name, spec in self.tables.items():
            for column, parent in spec.foreign_keys.items():
                if parent not in self.tables:
                    raise ValueError(
                        f"tables.{name}.foreign_keys.{column}: {parent!r} is not a table of "
                        f"this dataset ({', '.join(self.tables)})"
                    )
                if parent == name:
                    raise ValueError(f"tables.{name}.foreign_keys.{column}: refers to itself")
        self._order()  # refuses a cycle
        if self.subject is not None and self.subject not in self.tables:
            raise ValueError(f"subject: {self.subject!r} is not a table of this dataset")
        if self.subject is None and len(self.roots) != 1:
            raise ValueError(
                f"the tables {', '.join(self.roots)} refer to no other table: name the one "
                "whose key names a data subject with subject:"
            )
        if self.subset is not None and self.subset.table not in self.tables:
            raise ValueError(f"subset.table: {self.subset.table!r} is not a table of this dataset")
        return self

    def _order(self) -> list[str]:
        order: list[str] = []
        left = dict(self.tables)
        while left:
            ready = [n for n, s in left.items() if all(p in order for p in s.foreign_keys.values())]
            if not ready:
                raise ValueError(
                    f"the foreign keys of {', '.join(left)} form a cycle; a dataset's tables "
                    "refer to each other in one direction"
                )
            order.extend(ready)
            for n in ready:
                del left[n]
        return order

    @property
    def order(self) -> list[str]:
        """The tables, every parent before the tables that refer to it."""
        return self._order()

    @property
    def roots(self) -> list[str]:
        return [n for n, s in self.tables.items() if not s.foreign_keys]

    @property
    def subject_table(self) -> str:
        return self.subject or self.roots[0]

    @property
    def scope(self) -> str:
        return self.key_scope or self.dataset

    @property
    def file(self) -> str | None:
        return self._file

    def line_of(self, *path: str) -> int | None:
        return nearest_line(self._lines, path)

    @property
    def hash(self) -> str:
        canonical = json.dumps(self.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()

    def children(self, parent: str) -> list[tuple[str, str]]:
        """``(table, column)`` of every foreign key that refers to ``parent``."""
        return [
            (name, column)
            for name in self.order
            for column, p in self.tables[name].foreign_keys.items()
            if p == parent
        ]

    def below(self, table: str) -> list[str]:
        """``table`` and every table that refers to it, directly or not, in order."""
        found = {table}
        for name in self.order:
            if set(self.tables[name].foreign_keys.values()) & found:
                found.add(name)
        return [n for n in self.order if n in found]

    def table_dataset(self, table: str) -> str:
        """The dataset name a table's runs are recorded under."""
        return f"{self.dataset}__{table}"

    def table_policy(self, table: str) -> Policy:
        return self.table_policies()[table]

    def table_policies(self) -> dict[str, Policy]:
        """Each table as a single-table policy under the dataset's key scope, in order.
        ``PolicyError`` names the file, line and field of what is wrong in a table."""
        if self._policies is None:
            self._policies = {name: self._build(name) for name in self.order}
        return self._policies

    def _error(self, msg: str, *path: str) -> PolicyError:
        return PolicyError(
            msg, file=self._file, line=self.line_of(*path), field=".".join(path) or None
        )

    def _build(self, name: str) -> Policy:
        spec = self.tables[name]
        columns = {c: s.model_dump() for c, s in spec.columns.items()}
        for column, parent in spec.foreign_keys.items():
            pspec = self.tables[parent]
            key_spec = pspec.columns.get(pspec.source.key)
            if key_spec is None:
                raise self._error(
                    f"the key {pspec.source.key!r} of {parent!r} must be declared in columns",
                    "tables",
                    parent,
                    "columns",
                )
            if key_spec.action not in JOINABLE_KEY_ACTIONS:
                raise self._error(
                    f"{parent}.{pspec.source.key} is referred to by {name}.{column}, so it "
                    f"must be tokenized (one token key joins both); it is {key_spec.action!r}",
                    "tables",
                    parent,
                    "columns",
                    pspec.source.key,
                )
            declared = spec.columns.get(column)
            if declared is None:
                columns[column] = key_spec.model_dump()
            elif declared.model_dump() != key_spec.model_dump():
                raise self._error(
                    f"{name}.{column} refers to {parent}.{pspec.source.key} and must be "
                    "anonymized exactly as that key (or left out of columns to inherit it), "
                    "so the tokens join",
                    "tables",
                    name,
                    "columns",
                    column,
                )
        data = spec.model_dump(exclude={"foreign_keys", "columns"})
        data.update(
            dataset=self.table_dataset(name),
            description=f"{self.description or self.dataset}: table {name}",
            schedule=None,
            key_scope=self.scope,
            columns=columns,
            access=self.access,
        )
        try:
            policy = Policy.model_validate(data)
        except ValidationError as exc:
            err = exc.errors()[0]
            loc = ("tables", name, *(str(p) for p in err["loc"]))
            msg = "unknown field" if err["type"] == "extra_forbidden" else err["msg"]
            raise self._error(msg, *loc) from None
        prefix = ("tables", name)
        policy._file = self._file
        policy._lines = {path[2:]: line for path, line in self._lines.items() if path[:2] == prefix}
        return policy


def refuse_single_table_sections(
    data: dict[str, Any], lines: dict[tuple[str, ...], int], file: str
) -> None:
    """``PolicyError`` naming the line of a section only a single-table policy takes
    (``SINGLE_TABLE_ONLY``), at the dataset's level or in one of its tables, rather than
    a bare "unknown field"."""
    tables = data.get("tables")
    paths: list[tuple[str, ...]] = [(str(k),) for k in data]
    if isinstance(tables, dict):
        paths += [
            ("tables", str(name), str(k))
            for name, spec in tables.items()
            if isinstance(spec, dict)
            for k in spec
        ]
    for path in paths:
        what = SINGLE_TABLE_ONLY.get(path[-1])
        if what is not None:
            raise PolicyError(
                f"{path[-1]}: ({what}) is a section of a single-table policy that a dataset "
                "of several tables does not take yet; run the table as a policy of its own "
                "to have it",
                file=file,
                line=lines.get(path),
                field=".".join(path),
            )
