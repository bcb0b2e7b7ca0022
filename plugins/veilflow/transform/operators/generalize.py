"""Generalization: replace a value with a coarser one."""

from __future__ import annotations

from typing import ClassVar

import pandas as pd
from pydantic import Field

from veilflow.transform.base import STRING, ChunkContext, Operator, OperatorConfig


class GeneralizeConfig(OperatorConfig):
    #: Keep this many leading characters; the rest become ``fill`` (one per character).
    keep_prefix: int = Field(ge=0)
    fill: str = Field(default="*", max_length=1)


class Generalize(Operator[GeneralizeConfig]):
    """String prefix generalization, e.g. ZIP 94107 → 941**."""

    name: ClassVar[str] = "generalize"
    Config = GeneralizeConfig
    gdpr = "anonymous"
    gdpr_reason = "value coarsened; risk on quasi-identifiers measured by the gate"
    lineage_subtype = "AGGREGATION"
    hides_raw = False  # a short value may already be at the generalized level

    def apply(self, values: pd.Series, chunk: ChunkContext) -> pd.Series:
        n = self.config.keep_prefix
        head = values.str.slice(0, n)
        if not self.config.fill:
            return head.astype(STRING)
        rest = values.str.slice(n).str.replace(r".", self.config.fill, regex=True)
        return (head + rest).astype(STRING)
