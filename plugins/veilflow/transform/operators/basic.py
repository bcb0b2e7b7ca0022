"""Operators that need no key: keep, drop, mask, redact."""

from __future__ import annotations

from typing import ClassVar

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from veilflow.policy.operators import DropConfig, KeepConfig, MaskConfig, RedactConfig
from veilflow.transform.base import STRING, ChunkContext, Operator


class Keep(Operator[KeepConfig]):
    """Pass the value through unchanged. Only for columns that are not personal data."""

    name: ClassVar[str] = "keep"
    Config = KeepConfig
    masking = False
    gdpr = "identifying"
    gdpr_reason = "value copied unchanged; the policy declares it non-personal"
    lineage_type = "DIRECT"
    lineage_subtype = "IDENTITY"
    hides_raw = False

    def output_type(self, source_type: str) -> str:
        return source_type

    def apply(self, values: pd.Series, chunk: ChunkContext) -> pd.Series:
        return values


class Drop(Operator[DropConfig]):
    """Leave the column out of the anonymized table altogether."""

    name: ClassVar[str] = "drop"
    Config = DropConfig
    gdpr = "removed"
    gdpr_reason = "column removed"
    hides_raw = False

    def apply(self, values: pd.Series, chunk: ChunkContext) -> pd.Series:
        # The plan holds a Drop like any operator (its facts feed the run manifest), but
        # the column is left out of the candidate before any operator runs.
        raise AssertionError("drop columns are removed before transform")  # pragma: no cover


class Mask(Operator[MaskConfig]):
    """Replace characters with ``char``, keeping ``keep_first``/``keep_last`` characters.
    Keeps the length; values too short to hide anything are masked whole."""

    name: ClassVar[str] = "mask"
    Config = MaskConfig
    gdpr = "anonymous"
    gdpr_reason = "characters irreversibly replaced; no key can restore them"
    lineage_subtype = "MASKED"

    def apply(self, values: pd.Series, chunk: ChunkContext) -> pd.Series:
        first, last = self.config.keep_first, self.config.keep_last
        star = pa.scalar(self.config.char)
        arr = pa.array(values.array, type=pa.string())
        lengths = pc.utf8_length(arr)
        everything = pc.binary_repeat(star, lengths)
        if first == 0 and last == 0:
            out = everything
        else:
            # Where keeping first+last would reveal the whole value, mask everything instead.
            reveal = pc.greater(lengths, first + last)
            head = pc.utf8_slice_codeunits(arr, 0, first)
            tail = (
                pc.utf8_slice_codeunits(arr, -last) if last else pc.utf8_slice_codeunits(arr, 0, 0)
            )
            hidden = pc.max_element_wise(pc.subtract(lengths, first + last), 0)
            partial = pc.binary_join_element_wise(head, pc.binary_repeat(star, hidden), tail, "")
            out = pc.if_else(reveal, partial, everything)
        return pd.Series(pd.array(out, dtype=STRING), index=values.index)


class Redact(Operator[RedactConfig]):
    """Replace every non-NULL value with a fixed string."""

    name: ClassVar[str] = "redact"
    Config = RedactConfig
    gdpr = "anonymous"
    gdpr_reason = "value replaced by a constant"
    lineage_subtype = "MASKED"

    def apply(self, values: pd.Series, chunk: ChunkContext) -> pd.Series:
        arr = pa.array(values.array, type=pa.string())
        out = pc.if_else(
            pc.is_null(arr), pa.scalar(None, pa.string()), pa.scalar(self.config.replacement)
        )
        return pd.Series(pd.array(out, dtype=STRING), index=values.index)
