"""scrub_text: replacements consistent with structured columns, counts, unscannable values."""

from __future__ import annotations

import pandas as pd
import pytest
from pydantic import ValidationError
from veilflow.detect.scrub import UNSCANNABLE, ScrubText, ScrubTextConfig
from veilflow.transform.base import STRING, ChunkContext, ColumnContext
from veilflow.transform.keys import LocalKeyProvider
from veilflow.transform.operators.surrogate import Surrogate, SurrogateConfig
from veilflow.transform.operators.tokenize import Tokenize, TokenizeConfig

KEYS = LocalKeyProvider(b"0123456789abcdef0123456789abcdef")


def chunk_for(n: int) -> ChunkContext:
    return ChunkContext(frame=pd.DataFrame({"id": range(n)}), key_column="id")


def scrub(config: dict[str, object], values: list[object]) -> tuple[pd.Series, ChunkContext]:
    op = ScrubText(ScrubTextConfig(**config), ColumnContext("customers", "note", KEYS))
    chunk = chunk_for(len(values))
    return op.apply(pd.Series(values, dtype=object), chunk), chunk


NOTES = [
    "Customer Jane Doe wrote from jane.doe@example.org, call back on 555-123-4567.",
    None,
    "No action needed.",
    "Card 4111 1111 1111 1111 declined for Jane Doe; new mail jane.doe@example.org.",
]


def test_same_email_same_token_as_the_email_column() -> None:
    out, chunk = scrub({"with": {"EMAIL_ADDRESS": {"action": "tokenize", "keep_domain": True},
                                 "PERSON": "surrogate"}}, NOTES)
    column_token = Tokenize(TokenizeConfig(keep_domain=True),
                            ColumnContext("customers", "email", KEYS)).apply(
        pd.Series(["jane.doe@example.org"], dtype=STRING), chunk_for(1)).iloc[0]
    name = Surrogate(SurrogateConfig(entity="PERSON"),
                     ColumnContext("customers", "full_name", KEYS)).apply(
        pd.Series(["Jane Doe"], dtype=STRING), chunk_for(1)).iloc[0]
    assert column_token in out.iloc[0] and column_token in out.iloc[3]
    assert out.iloc[0].startswith(f"Customer {name} wrote from {column_token}")
    assert "[PHONE_NUMBER]" in out.iloc[0] and "[CREDIT_CARD]" in out.iloc[3]
    for raw in ("Jane Doe", "jane.doe@", "555-123-4567", "4111 1111"):
        assert not out.str.contains(raw, regex=False).any()
    assert out.isna().tolist() == [False, True, False, False]
    assert out.iloc[2] == "No action needed."
    assert chunk.counters["note"]["entity:EMAIL_ADDRESS"] == 2
    assert chunk.counters["note"]["entity:PERSON"] == 2
    assert chunk.counters["note"]["entity:CREDIT_CARD"] == 1


def test_only_the_listed_entities_are_replaced() -> None:
    out, chunk = scrub({"entities": ["PHONE_NUMBER"], "with": "mask"}, NOTES[:1])
    assert out.iloc[0] == ("Customer Jane Doe wrote from jane.doe@example.org, call back on "
                           "************.")
    assert set(chunk.counters["note"]) == {"entity:PHONE_NUMBER"}


def test_unscannable_values_are_redacted_and_counted() -> None:
    bad = b"Jane Doe \xff".decode("utf-8", "surrogateescape")
    out, chunk = scrub({}, [bad, "x" * 10, bytes([0xC3, 0x28])])
    assert out.tolist() == [UNSCANNABLE, "x" * 10, UNSCANNABLE]
    assert chunk.counters["note"]["unscannable"] == 2


def test_index_and_dtype_are_kept() -> None:
    values = pd.Series(["mail a@b.org", None], index=[10, 20], dtype=STRING)
    op = ScrubText(ScrubTextConfig(), ColumnContext("d", "note", KEYS))
    out = op.apply(values, chunk_for(2))
    assert list(out.index) == [10, 20] and out.dtype == STRING
    assert out.iloc[0] == "mail [EMAIL_ADDRESS]"


def test_config_is_validated() -> None:
    with pytest.raises(ValidationError):
        ScrubTextConfig(**{"with": "explode"})
    with pytest.raises(ValidationError):
        ScrubTextConfig(entities=["person"])
    with pytest.raises(ValidationError):
        ScrubTextConfig(unknown=1)
    with pytest.raises(ValidationError):
        ScrubTextConfig(**{"with": {"PERSON": "ff1"}})
    with pytest.raises(ValidationError):
        ScrubTextConfig(**{"with": {"action": "drop"}})
    with pytest.raises(ValidationError):  # the inner operator validates its own parameters
        ScrubText(ScrubTextConfig(**{"with": {"action": "tokenize", "bogus": 1}}),
                  ColumnContext("d", "n", KEYS))
