"""The operator contract and registry.

An operator is one small class: a ``name`` used by the policy's ``action:``, a pydantic
``Config`` that validates its parameters (unknown parameters are errors), and a vectorized
``apply`` over a whole chunk's column. The configs live in ``veilflow.policy.operators`` so a
policy is checked whole when it loads. Adding an operator is one file, its config and one
registry line in ``veilflow.registry``.

Values arrive as a pandas Series of pyarrow-backed strings (``pd.StringDtype("pyarrow")``),
NULL as ``pd.NA``: every column travels as PostgreSQL's text form, so an operator parses what
it needs. ``apply`` returns a Series of the same length and index; NULL stays NULL unless the
operator says otherwise.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, ClassVar, Generic, Literal, TypeVar

import numpy as np
import pandas as pd

from veilflow.policy.operators import OperatorConfig
from veilflow.transform.keys import DataKey, KeyProvider

STRING = pd.StringDtype("pyarrow")

GdprClass = Literal["anonymous", "pseudonymous", "identifying", "removed"]


def describe_operation(
    name: str, params: dict[str, Any], key: tuple[str, int] | None = None
) -> str:
    """The operation as lineage names it: the operator, every parameter (JSON, sorted) and
    the key id and version it used, e.g. ``mask(char="*", keep_last=4)``. Built from what a
    run records (``Operator.params()`` and the key reference), so a manifest alone yields it."""
    args = ", ".join(
        f"{k}={json.dumps(v, sort_keys=True, separators=(',', ':'))}"
        for k, v in sorted(params.items())
    )
    text = f"{name}({args})"
    if key is not None:
        text += f" with key {key[0]} version {key[1]}"
    return text


C = TypeVar("C", bound=OperatorConfig)


@dataclass(frozen=True)
class ColumnContext:
    """What an operator knows of the column it serves, fixed for a whole run."""

    dataset: str
    column: str
    keys: KeyProvider


@dataclass
class ChunkContext:
    """One chunk: the source frame (for subject or context columns) and counters the run
    manifest collects, e.g. ``{"email": Counter({"fallback_token": 3})}``.

    ``row_column`` names the frame's column that numbers the run's snapshot in key order
    (the pipeline's ``_vf_row``); error messages name rows by it. A row key is never named:
    keys are often personal data themselves (an email, a customer number), and an error
    message travels into the run record, lineage, the audit log and task logs."""

    frame: pd.DataFrame
    key_column: str
    counters: dict[str, Counter[str]] = field(default_factory=dict)
    row_column: str | None = None

    def count(self, column: str, what: str, n: int = 1) -> None:
        if n:
            self.counters.setdefault(column, Counter())[what] += n

    def row_refs(self, mask: pd.Series | np.ndarray, shown: int = 5) -> str:
        """The first ``shown`` rows where ``mask`` holds, for error messages: snapshot
        ordinals ("snapshot rows 12, 40 (numbered in key order)"), or 1-based positions in
        the chunk when the frame has no ordinal column. Never a key, never a value."""
        hits = np.flatnonzero(np.asarray(mask, dtype=bool))
        first = hits[:shown]
        if self.row_column is not None and self.row_column in self.frame.columns:
            numbers = [int(v) for v in self.frame[self.row_column].iloc[first]]
            what, how = "snapshot row", " (numbered in key order)"
        else:
            numbers = [int(i) + 1 for i in first]
            what, how = "chunk position", ""
        more = f" and {len(hits) - len(first)} more" if len(hits) > len(first) else ""
        plural = "s" if len(hits) > 1 else ""
        return f"{what}{plural} {', '.join(map(str, numbers))}{more}{how}"


class Operator(ABC, Generic[C]):
    """One transformation of one column."""

    name: ClassVar[str]
    Config: ClassVar[type[OperatorConfig]]
    #: True where the output hides the input (OpenLineage ``masking``).
    masking: ClassVar[bool] = True
    #: What the output is under GDPR, and why (for the lineage facet).
    gdpr: ClassVar[GdprClass] = "pseudonymous"
    gdpr_reason: ClassVar[str] = ""
    #: The data-key purpose this operator draws on, or None when it needs no key.
    key_purpose: ClassVar[str | None] = None
    #: OpenLineage transformation type / subtype.
    lineage_type: ClassVar[str] = "DIRECT"
    lineage_subtype: ClassVar[str] = "TRANSFORMATION"
    #: Whether the output must differ from the input for every non-NULL value (the
    #: "no raw value survives" check applies).
    hides_raw: ClassVar[bool] = True

    def __init__(self, config: C, column: ColumnContext) -> None:
        self.config = config
        self.column = column

    @property
    def key(self) -> DataKey | None:
        """The active data key for this operator's purpose (cached by the provider)."""
        if self.key_purpose is None:
            return None
        return self.column.keys.data_key(self.column.dataset, self.key_purpose)

    def output_type(self, source_type: str) -> str:
        """The PostgreSQL type of the output column; text unless the operator keeps types."""
        return "text"

    def describe(self) -> str:
        """One line for lineage and summaries: operator, parameters, key version. No key."""
        params = self.config.model_dump(exclude_defaults=True)
        text = self.name + (f" {params}" if params else "")
        key = self.key
        return f"{text} key={key.ref}" if key is not None else text

    def params(self) -> dict[str, Any]:
        return self.config.model_dump(mode="json")

    @abstractmethod
    def apply(self, values: pd.Series, chunk: ChunkContext) -> pd.Series:
        """Transform a whole chunk's column at once."""
