"""Column classification on the demo customers table and on a differently named table."""

from __future__ import annotations

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
        "mrn": IDENTIFIER,
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
