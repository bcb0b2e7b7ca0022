"""Suppression: every value becomes NULL; chosen rows for k-anonymity."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from pydantic import ValidationError

from veilflow.transform.base import STRING, ChunkContext, ColumnContext
from veilflow.transform.keys import LocalKeyProvider
from veilflow.transform.operators.suppress import (
    Suppress,
    SuppressConfig,
    suppress_rows,
)

COL = ColumnContext("ds", "diagnosis", LocalKeyProvider(b"z" * 32))


def test_every_value_becomes_null_and_is_counted() -> None:
    values = pd.Series(["flu", None, "", "asthma"], dtype=STRING, index=[10, 11, 12, 13])
    chunk = ChunkContext(pd.DataFrame({"k": range(4)}), "k")
    out = Suppress(SuppressConfig(), COL).apply(values, chunk)
    assert out.dtype == STRING and list(out.index) == [10, 11, 12, 13]
    assert out.isna().all()
    assert chunk.counters["diagnosis"]["suppressed"] == 3


def test_operator_metadata() -> None:
    op = Suppress(SuppressConfig(), COL)
    assert op.gdpr == "anonymous" and op.key is None and op.describe() == "suppress"
    assert op.output_type("integer") == "integer"
    with pytest.raises(ValidationError):
        SuppressConfig.model_validate({"when": "always"})


def test_suppress_rows() -> None:
    values = pd.Series(["94107", "94110", None, "10001"], dtype=STRING)
    out = suppress_rows(values, np.array([True, False, True, False]))
    assert [None if pd.isna(v) else v for v in out] == [None, "94110", None, "10001"]
    assert out.dtype == STRING
    with pytest.raises(ValueError, match="one flag per value"):
        suppress_rows(values, np.array([True]))
