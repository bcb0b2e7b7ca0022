"""Column classification on the demo customers table and on a differently named table."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from faker import Faker

from veilflow.detect.columns import (
    FREE_TEXT,
    IDENTIFIER,
    classify_columns,
    classify_series,
)
from veilflow.detect.report import ScanReport
from veilflow.pipeline.seed import _Pools, customers_frame

CUSTOMERS = {
    "customer_id": IDENTIFIER,
    "full_name": "PERSON",
    "email": "EMAIL_ADDRESS",
    "phone": "PHONE_NUMBER",
    "ssn": "US_SSN",
    "credit_card": "CREDIT_CARD",
    "birth_date": "DATE_TIME",
    "gender": None,
    "zip": "ZIP_CODE",
    "city": "LOCATION",
    "iban": "IBAN_CODE",
    "ip_address": "IP_ADDRESS",
    "signup_ts": "DATE_TIME",
    "amount": None,
    "diagnosis": None,
    "note": FREE_TEXT,
}


@pytest.fixture(scope="module")
def customers() -> pd.DataFrame:
    return customers_frame(1, 600, 42, _Pools(42))


def patients(n: int = 300, seed: int = 11) -> tuple[pd.DataFrame, dict[str, str | None]]:
    rng = np.random.default_rng(seed)
    fakes = {loc: Faker(loc) for loc in ("en_GB", "de_DE", "fr_FR", "en_US")}
    for i, f in enumerate(fakes.values()):
        f.seed_instance(seed + i)
    rows = []
    locales = list(fakes)
    for _ in range(n):
        f = fakes[locales[rng.integers(len(locales))]]
        us = fakes["en_US"]
        rows.append(
            {
                "mrn": f"MRN-{rng.integers(10**6, 10**7)}",
                "pt_name": f"{f.first_name()} {f.last_name()}",
                "dob": f.date_of_birth().strftime("%d/%m/%Y"),
                "sex": str(rng.choice(["F", "M"])),
                "tel": f.phone_number(),
                "e_mail": f.email(),
                "addr_line": us.street_address(),
                "country": us.country(),
                "post_code": us.zipcode(),
                "sin": us.ssn(),
                "cc_num": us.credit_card_number(),
                "acct_iban": f.iban(),
                "client_ip": us.ipv4(),
                "visit_time": us.date_time().isoformat(sep=" "),
                "ward": str(rng.choice(["A1", "B2", "ICU"])),
                "charge": f"{rng.uniform(10, 900):.2f}",
                "remarks": f"Seen by Dr. {f.last_name()}; callback {f.phone_number()}.",
            }
        )
    expected: dict[str, str | None] = {
        "mrn": "MEDICAL_RECORD_NUMBER",
        "pt_name": "PERSON",
        "dob": "DATE_TIME",
        "sex": None,
        "tel": "PHONE_NUMBER",
        "e_mail": "EMAIL_ADDRESS",
        "addr_line": "LOCATION",
        "country": "LOCATION",
        "post_code": "ZIP_CODE",
        "sin": "US_SSN",
        "cc_num": "CREDIT_CARD",
        "acct_iban": "IBAN_CODE",
        "client_ip": "IP_ADDRESS",
        "visit_time": "DATE_TIME",
        "ward": None,
        "charge": None,
        "remarks": FREE_TEXT,
    }
    return pd.DataFrame(rows), expected


def test_every_customers_column(customers: pd.DataFrame) -> None:
    got = {v.column: v.entity for v in classify_columns(customers)}
    assert got == CUSTOMERS


def test_every_column_of_a_differently_named_table() -> None:
    frame, expected = patients()
    got = {v.column: v.entity for v in classify_columns(frame)}
    assert got == expected


def test_structured_formats_without_telling_names(customers: pd.DataFrame) -> None:
    renamed = customers[
        ["email", "ssn", "credit_card", "iban", "ip_address", "birth_date", "full_name", "note"]
    ].copy()
    renamed.columns = [f"c{i}" for i in range(len(renamed.columns))]
    got = [v.entity for v in classify_columns(renamed)]
    assert got == [
        "EMAIL_ADDRESS",
        "US_SSN",
        "CREDIT_CARD",
        "IBAN_CODE",
        "IP_ADDRESS",
        "DATE_TIME",
        "PERSON",
        FREE_TEXT,
    ]


def test_plain_numbers_are_not_zip_codes_or_phones() -> None:
    s = pd.Series([str(10000 + i * 7) for i in range(300)])
    assert classify_series("quantity", s).entity is None


def test_verdicts_and_reports_hold_no_raw_values(customers: pd.DataFrame) -> None:
    report = ScanReport.of_frame("customers", "test", customers)
    rendered = report.to_json() + report.to_table() + report.draft_policy("customers")
    for column in ("full_name", "email", "phone", "ssn", "credit_card", "iban", "ip_address"):
        for value in customers[column].dropna().head(50):
            assert value not in rendered, column


def test_nulls_and_empty_columns() -> None:
    v = classify_series("email", pd.Series([None, None, ""], dtype=object))
    assert v.entity is None and v.sampled == 0 and v.confidence == 0.0
    v = classify_series("email", pd.Series(["a@b.org", None, "c@d.com", None]))
    assert v.entity == "EMAIL_ADDRESS" and v.null_rate == 0.5


def test_drift_detail_names_the_new_columns_verdict(customers: pd.DataFrame) -> None:
    from veilflow.detect.columns import drift_detail
    from veilflow.errors import SchemaDrift

    frame = customers.rename(columns={"email": "backup_contact"})
    detail = drift_detail(frame, ["backup_contact", "not_sampled"])
    err = SchemaDrift("restricted.customers", ["backup_contact"], [], detail=detail)
    assert "backup_contact: EMAIL_ADDRESS" in str(err)
    assert "suggested action tokenize" in str(err)
    assert not any(v in str(err) for v in customers["email"].head(50))


def _new_entity_columns(n: int = 200, seed: int = 5) -> tuple[pd.DataFrame, dict[str, str | None]]:
    """Columns of the identifiers HIPAA Safe Harbor names, by name and by value."""
    fake = Faker("en_US")
    fake.seed_instance(seed)
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "homepage": [fake.url() for _ in range(n)],
            "vin": [fake.vin() for _ in range(n)],
            "license_plate": [fake.license_plate() for _ in range(n)],
            "wifi_mac": [fake.mac_address() for _ in range(n)],
            "pump_serial_no": [f"SN-{rng.integers(10**5, 10**6)}-{i % 7}" for i in range(n)],
            "member_id": [f"XJ{rng.integers(10**7, 10**8)}" for _ in range(n)],
            "acct_code": [f"AC-{rng.integers(1000, 9999)}-{i:04d}" for i in range(n)],
            "dl_number": [f"D{rng.integers(10**6, 10**7)}" for _ in range(n)],
            "fingerprint_ref": [f"FP{rng.integers(10**6, 10**7)}" for _ in range(n)],
            "photo": [f"IMG_{rng.integers(1000, 9999)}.jpg" for _ in range(n)],
            "age": [str(int(a)) for a in rng.integers(18, 104, n)],
            "c_urls": [f"https://portal.example.org/p/{i}" for i in range(n)],
        }
    )
    expected: dict[str, str | None] = {
        "homepage": "URL",
        "vin": "VEHICLE_ID",
        "license_plate": "VEHICLE_ID",
        "wifi_mac": "DEVICE_ID",
        "pump_serial_no": "DEVICE_ID",
        "member_id": "HEALTH_PLAN_ID",
        "acct_code": "ACCOUNT_NUMBER",
        "dl_number": "LICENSE_NUMBER",
        "fingerprint_ref": "BIOMETRIC_ID",
        "photo": "PHOTO_FILE",
        "age": "AGE_OVER_89",
        "c_urls": "URL",  # by value alone
    }
    return frame, expected


def test_columns_of_the_new_identifiers() -> None:
    frame, expected = _new_entity_columns()
    got = {v.column: v.entity for v in classify_columns(frame)}
    assert got == expected


def test_vins_and_macs_without_telling_names() -> None:
    frame, _ = _new_entity_columns()
    renamed = frame[["vin", "wifi_mac", "photo"]].set_axis(["c0", "c1", "c2"], axis=1)
    assert [v.entity for v in classify_columns(renamed)] == [
        "VEHICLE_ID",
        "DEVICE_ID",
        "PHOTO_FILE",
    ]


def test_ages_under_90_are_not_ages_over_89() -> None:
    s = pd.Series([str(a) for a in range(18, 89)] * 3)
    assert classify_series("age", s).entity is None


def test_named_columns_of_non_identifiers_stay_what_they_are() -> None:
    # A digits-only account number is a bank account number, as before.
    s = pd.Series([str(10**15 + 7919 * i) for i in range(300)])
    assert classify_series("account_no", s).entity == "US_BANK_NUMBER"
    # A "serial" column of words is no device identifier.
    words = pd.Series(["pending", "n/a", "unknown", "tbd"] * 50)
    assert classify_series("serial", words).entity is None


def test_suggested_actions_of_the_new_entities_have_a_checked_output_format() -> None:
    """Each new entity's suggested action, applied to sample values by the real operator,
    produces values the gate's GX format expectation accepts (``drop`` leaves no column)."""
    from veilflow.detect.columns import SUGGESTIONS
    from veilflow.policy.loader import parse_policy
    from veilflow.registry import OPERATORS
    from veilflow.transform.base import STRING, ChunkContext, ColumnContext
    from veilflow.transform.keys import LocalKeyProvider
    from veilflow.validate.context import GateColumn, GateContext
    from veilflow.validate.gx_suite import build_expectations
    from veilflow.zones.run_tables import RunTables

    frame, expected = _new_entity_columns(50)
    samples = {entity: frame[column] for column, entity in expected.items() if entity}
    keys = LocalKeyProvider(b"\x02" * 32)
    for entity, values in samples.items():
        action, params = SUGGESTIONS[entity]
        if action == "drop":
            continue
        spec = ", ".join(
            [f"action: {action}"] + [f"{k}: {json.dumps(v)}" for k, v in params.items()]
        )
        policy = parse_policy(
            "dataset: d\nsource: {table: restricted.d, key: k}\ntarget: {table: anonymized.d}\n"
            f"columns:\n  k: keep\n  c: {{{spec}}}\n"
        )
        col = GateColumn("c", action, OPERATORS[action].hides_raw, "text", "text", False)
        ctx = GateContext(
            policy=policy,
            tables=RunTables("d", "r1"),
            columns=[col],
            rows_in=len(values),
            report_dir=Path("/nonexistent"),
        )
        formats = [s for s in build_expectations(ctx) if s.check == "format"]
        assert formats, entity
        op = OPERATORS[action](OPERATORS[action].Config(**params), ColumnContext("d", "c", keys))
        chunk = ChunkContext(frame=pd.DataFrame({"k": range(len(values))}), key_column="k")
        out = [v for v in op.apply(values.astype(STRING), chunk).tolist() if v is not None]
        for f in formats:
            if "regex" in f.kwargs:
                assert all(re.search(f.kwargs["regex"], v) for v in out), (entity, f)
            if "value_set" in f.kwargs:
                assert set(out) <= set(f.kwargs["value_set"]), (entity, f)


def test_a_digits_only_account_column_is_a_bank_number_not_a_phone() -> None:
    # Bug: account_no holding ten-digit numbers was classified PHONE_NUMBER (mask keep_last=2).
    rng = np.random.default_rng(5)
    values = pd.Series([f"{n:010d}" for n in rng.integers(10**9, 10**10, 300)])
    for column in ("account_no", "acct_num", "bank_account"):
        assert classify_series(column, values).entity == "US_BANK_NUMBER", column
    assert classify_series("phone", values).entity == "PHONE_NUMBER"
    assert classify_series("contact_no", values).entity == "PHONE_NUMBER"
