"""scrub_text: replacements consistent with structured columns, counts, unscannable values."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

import pandas as pd
import pytest
from pydantic import ValidationError

from veilflow.detect.scanner import BatchScan
from veilflow.detect.scrub import UNSCANNABLE, ScrubText, ScrubTextConfig
from veilflow.detect.spans import ENTITIES, Span
from veilflow.transform.base import STRING, ChunkContext, ColumnContext
from veilflow.transform.keys import LocalKeyProvider
from veilflow.transform.operators.surrogate import Surrogate, SurrogateConfig
from veilflow.transform.operators.tokenize import Tokenize, TokenizeConfig

KEYS = LocalKeyProvider(b"0123456789abcdef0123456789abcdef")


def chunk_for(n: int) -> ChunkContext:
    return ChunkContext(frame=pd.DataFrame({"id": range(n)}), key_column="id")


def scrub(config: dict[str, object], values: Sequence[object]) -> tuple[pd.Series, ChunkContext]:
    op = ScrubText(ScrubTextConfig.model_validate(config), ColumnContext("customers", "note", KEYS))
    chunk = chunk_for(len(values))
    return op.apply(pd.Series(values, dtype=object), chunk), chunk


NOTES = [
    "Customer Jane Doe wrote from jane.doe@example.org, call back on 555-123-4567.",
    None,
    "No action needed.",
    "Card 4111 1111 1111 1111 declined for Jane Doe; new mail jane.doe@example.org.",
]


def test_same_email_same_token_as_the_email_column() -> None:
    out, chunk = scrub(
        {
            "with": {
                "EMAIL_ADDRESS": {"action": "tokenize", "keep_domain": True},
                "PERSON": "surrogate",
            }
        },
        NOTES,
    )
    column_token = (
        Tokenize(TokenizeConfig(keep_domain=True), ColumnContext("customers", "email", KEYS))
        .apply(pd.Series(["jane.doe@example.org"], dtype=STRING), chunk_for(1))
        .iloc[0]
    )
    name = (
        Surrogate(SurrogateConfig(entity="PERSON"), ColumnContext("customers", "full_name", KEYS))
        .apply(pd.Series(["Jane Doe"], dtype=STRING), chunk_for(1))
        .iloc[0]
    )
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
    assert out.iloc[0] == (
        "Customer Jane Doe wrote from jane.doe@example.org, call back on ************."
    )
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
        ScrubTextConfig.model_validate({"with": "explode"})
    with pytest.raises(ValidationError):
        ScrubTextConfig.model_validate({"entities": ["person"]})
    with pytest.raises(ValidationError):
        ScrubTextConfig.model_validate({"unknown": 1})
    with pytest.raises(ValidationError):
        ScrubTextConfig.model_validate({"with": {"PERSON": "ff1"}})
    with pytest.raises(ValidationError):
        ScrubTextConfig.model_validate({"with": {"action": "drop"}})
    with pytest.raises(ValidationError):  # the inner operator validates its own parameters
        ScrubText(
            ScrubTextConfig.model_validate({"with": {"action": "tokenize", "bogus": 1}}),
            ColumnContext("d", "n", KEYS),
        )


class _ContextScanner:
    """An engine whose answer depends on the context, as the real one's does: "Virginia"
    is a place; "Campbell" is a name only after a replaced place; e-mails are e-mails."""

    RULES = (
        ("LOCATION", re.compile(r"Virginia")),
        ("PERSON", re.compile(r"\[LOCATION\] Campbell")),
        ("EMAIL_ADDRESS", re.compile(r"[\w.]+@x\.org")),
    )

    def scan(self, texts: Sequence[object], entities: Iterable[str] | None = None) -> BatchScan:
        return BatchScan(
            spans=[
                sorted(
                    (
                        Span(m.start(), m.end(), e, 1.0)
                        for e, rx in self.RULES
                        for m in rx.finditer(str(t))
                    ),
                    key=lambda s: s.start,
                )
                for t in texts
            ]
        )


class _ContextScrub(ScrubText):
    @property
    def scanner(self) -> _ContextScanner:  # type: ignore[override]
        return _ContextScanner()


def test_second_pass_replaces_what_the_first_one_uncovered() -> None:
    config = ScrubTextConfig.model_validate({"with": {"EMAIL_ADDRESS": "tokenize"}})
    op = _ContextScrub(config, ColumnContext("customers", "note", KEYS))
    chunk = chunk_for(2)
    out = op.apply(
        pd.Series(
            ["Customer Virginia Campbell wrote from jane@x.org", "Virginia is lovely"], dtype=STRING
        ),
        chunk,
    )
    token = (
        Tokenize(TokenizeConfig(), ColumnContext("customers", "note", KEYS))
        .apply(pd.Series(["jane@x.org"], dtype=STRING), chunk_for(1))
        .iloc[0]
    )
    # The name left behind by the place is replaced; the token (which the engine also finds
    # in the output) is the first pass's own replacement and is not replaced again.
    assert out.tolist() == [
        f"Customer [LOCATION] [PERSON] wrote from {token}",
        "[LOCATION] is lovely",
    ]
    assert chunk.counters["note"]["rescrubbed"] == 1
    assert chunk.counters["note"]["entity:PERSON"] == 1
    assert chunk.counters["note"]["entity:EMAIL_ADDRESS"] == 1


@pytest.mark.parametrize(
    ("rows", "seed"),
    [
        (2000, 7),
        pytest.param(20_000, 42, marks=pytest.mark.slow),
    ],
)
def test_no_residual_pii_in_scrubbed_seed_notes(rows: int, seed: int) -> None:
    """The validation gate's count over the demo policy's notes: spans the engine finds in
    the scrubbed note that are source data by the rescan's rule (whole words of the raw note,
    or a whole raw value of the row). Seed 7 is the ``seeded_db`` fixture's; seed 42 the
    demo table's."""
    from pathlib import Path

    from veilflow.detect.scanner import scanner_for
    from veilflow.pipeline.seed import iter_customers
    from veilflow.policy.loader import load_policy
    from veilflow.policy.privacy import RESCAN_ENTITIES
    from veilflow.validate.rescan import survived

    policy = load_policy(Path(__file__).resolve().parents[2] / "policies" / "customers.yaml")
    op = ScrubText(
        ScrubTextConfig.model_validate(
            {**policy.columns["note"].params, "detection": policy.detection}
        ),
        ColumnContext("customers", "note", KEYS),
    )
    engine = scanner_for(policy.detection)
    residual: list[tuple[str, str]] = []
    scrubbed = 0
    for frame in iter_customers(rows, seed=seed, batch=rows):
        out = op.apply(
            frame["note"].astype(STRING), ChunkContext(frame=frame, key_column="customer_id")
        )
        kept = out.notna().to_numpy()
        notes = [str(v) for v in out[kept]]
        raw_rows = [
            (str(row.note), frozenset(" ".join(str(v).casefold().split()) for v in row))
            for row, k in zip(frame.itertuples(index=False), kept, strict=True)
            if k
        ]
        found = engine.scan(notes, entities=RESCAN_ENTITIES).spans
        for note, (raw_note, raw_values), spans in zip(notes, raw_rows, found, strict=True):
            residual += [
                (s.entity, note)
                for s in spans
                if survived(note[s.start : s.end], raw_note, raw_values)
            ]
        scrubbed += sum(n != r for n, r in zip(notes, frame["note"][kept], strict=True))
    assert scrubbed > rows // 2  # the notes do carry PII, and it was replaced
    assert residual == []


def test_new_entities_get_typed_placeholders_by_default() -> None:
    note = (
        "MRN: 00482913. A 93-year-old seen on the third of July; photo IMG_2041.jpg, "
        "portal https://portal.example.org/p/4471, fingerprint id FP-88213-A, "
        "VIN 1HGCM82633A004352, pump S/N 4471AX22."
    )
    out, chunk = scrub({}, [note])
    text = out.iloc[0]
    for placeholder in (
        "[MEDICAL_RECORD_NUMBER]",
        "[AGE_OVER_89]",
        "[DATE_TIME]",
        "[PHOTO_FILE]",
        "[URL]",
        "[BIOMETRIC_ID]",
        "[VEHICLE_ID]",
        "[DEVICE_ID]",
    ):
        assert placeholder in text, text
    for raw in ("00482913", "93", "July", "IMG_2041", "portal.example", "FP-88213", "4471AX22"):
        assert raw not in text, raw
    assert chunk.counters["note"]["entity:URL"] == 1


def test_surrogate_keeps_the_shape_of_identifiers_and_placeholders_the_rest() -> None:
    note = "Member ID XJH-448812, aged 95, see https://x.example.org/a, photo jane_doe.jpg."
    out, _ = scrub({"with": "surrogate"}, [note])
    text = out.iloc[0]
    # A realistic fake of the same shape for the plan identifier (letters, dash, digits) ...
    fake = text.split("Member ID ", 1)[1].split(",", 1)[0]
    assert fake != "XJH-448812" and len(fake) == 10 and fake[3] == "-" and fake[4:].isdigit()
    # ... and the typed placeholder where a fake would mislead: an age over 89 stays one
    # category, a fake URL or photo name would read as a real one.
    assert "aged [AGE_OVER_89]" in text
    assert "[URL]" in text and "[PHOTO_FILE]" in text


def test_the_gate_rescans_every_identifying_entity_by_default() -> None:
    from veilflow.policy.privacy import RESCAN_ENTITIES, ValidationSettings

    identifiers = {
        "URL",
        "MEDICAL_RECORD_NUMBER",
        "HEALTH_PLAN_ID",
        "ACCOUNT_NUMBER",
        "LICENSE_NUMBER",
        "VEHICLE_ID",
        "DEVICE_ID",
        "BIOMETRIC_ID",
        "PHOTO_FILE",
    }
    assert identifiers <= set(RESCAN_ENTITIES)
    assert set(ValidationSettings().rescan_entities) == set(RESCAN_ENTITIES)
    # Quasi-identifiers stay with the risk measures.
    assert not {"DATE_TIME", "LOCATION", "ZIP_CODE", "AGE_OVER_89"} & set(RESCAN_ENTITIES)
    assert set(RESCAN_ENTITIES) <= set(ENTITIES)
