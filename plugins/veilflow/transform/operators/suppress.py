"""Suppression: the value becomes NULL (a whole column, or chosen rows for k-anonymity)."""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import pandas as pd

from veilflow.policy.operators import SuppressConfig
from veilflow.transform.base import STRING, ChunkContext, Operator


def suppress_rows(values: pd.Series, rows: np.ndarray | pd.Series) -> pd.Series:
    """``values`` with the rows where ``rows`` holds set to NULL (e.g. the records of
    equivalence classes smaller than k); positional, same index and dtype."""
    mask = np.asarray(rows, dtype=bool)
    if mask.shape != (len(values),):
        raise ValueError("suppress_rows needs one flag per value")
    return values.mask(pd.Series(mask, index=values.index))


class Suppress(Operator[SuppressConfig]):
    """Every value becomes NULL; the column stays in the table with its type.

    YAML: ``{action: suppress}``. Unlike ``drop`` the column keeps existing for consumers
    and schema checks; unlike ``redact`` nothing, not even the presence of a value, remains."""

    name: ClassVar[str] = "suppress"
    Config = SuppressConfig
    gdpr = "anonymous"
    gdpr_reason = "value removed (NULL)"
    lineage_subtype = "MASKED"

    def output_type(self, source_type: str) -> str:
        return source_type

    def apply(self, values: pd.Series, chunk: ChunkContext) -> pd.Series:
        chunk.count(self.column.column, "suppressed", int(values.notna().sum()))
        return pd.Series(pd.NA, index=values.index, dtype=STRING)
