"""Structured PII in free text: cards of every network and length, IBANs, SSNs, phones in
several national formats, IPs, emails; and the checksums they rest on."""

from __future__ import annotations

import pytest
from faker import Faker
from hypothesis import given
from hypothesis import strategies as st

from veilflow.detect.scanner import Scanner
from veilflow.transform.checksums import card_ok, iban_ok, luhn_array, luhn_ok, ssn_ok


@pytest.fixture(scope="module")
def patterns_only() -> Scanner:
    return Scanner(use_ner=False)


def found(scanner: Scanner, text: str, entity: str) -> list[str]:
    return [text[s.start : s.end] for s in scanner.scan_text(text) if s.entity == entity]


def _luhn_complete(body: str) -> str:
    for d in "0123456789":
        if luhn_ok(body + d):
            return body + d
    raise AssertionError  # pragma: no cover


def _group(n: str, sep: str) -> str:
    if len(n) == 15:
        return sep.join((n[:4], n[4:10], n[10:]))
    return sep.join(n[i : i + 4] for i in range(0, len(n), 4))


CARDS = {
    "visa16": _luhn_complete("411111111111111"),
    "visa19": _luhn_complete("4" + "123456789012345678"[:17]),
    "visa13": _luhn_complete("422222222222"),
    "mastercard_2series": _luhn_complete("222100123456789"),
    "mastercard_2720": _luhn_complete("272099000000001"),
    "mastercard_5series": _luhn_complete("555555555555444"),
    "amex": _luhn_complete("37828224631000"),
    "discover": _luhn_complete("601111111111111"),
    "maestro12": _luhn_complete("67622057559"),
    "maestro19": _luhn_complete("675900000000000000"),
    "jcb": _luhn_complete("353011133330000"),
    "diners14": _luhn_complete("3056930902590"),
    "unionpay19": _luhn_complete("620000000000000000"),
}


@pytest.mark.parametrize("sep", ["", " ", "-"])
@pytest.mark.parametrize("kind", sorted(CARDS))
def test_card_every_network_and_length(patterns_only: Scanner, kind: str, sep: str) -> None:
    number = _group(CARDS[kind], sep) if sep else CARDS[kind]
    text = f"Please charge {number} today."
    assert found(patterns_only, text, "CREDIT_CARD") == [number]


def test_card_with_a_wrong_check_digit_is_not_a_card(patterns_only: Scanner) -> None:
    good = CARDS["visa16"]
    bad = good[:-1] + str((int(good[-1]) + 1) % 10)
    assert found(patterns_only, f"card {_group(bad, ' ')} ok", "CREDIT_CARD") == []


def test_card_followed_by_a_number_is_still_found(patterns_only: Scanner) -> None:
    number = _group(CARDS["mastercard_2series"], " ")
    assert found(patterns_only, f"card {number} 2 times", "CREDIT_CARD") == [number]


def test_faker_cards_are_found() -> None:
    fake = Faker()
    fake.seed_instance(5)
    scanner = Scanner(use_ner=False)
    kinds = [
        "visa16",
        "visa19",
        "visa13",
        "mastercard",
        "amex",
        "discover",
        "maestro",
        "jcb16",
        "jcb15",
        "diners",
    ]
    numbers = [fake.credit_card_number(k) for k in kinds for _ in range(20)]
    texts = [f"card {n} on file" for n in numbers]
    spans = scanner.scan(texts).spans
    missed = [
        n
        for n, sp in zip(numbers, spans, strict=True)
        if not any(s.entity == "CREDIT_CARD" for s in sp)
    ]
    assert missed == []


@given(
    st.text(alphabet="0123456789", min_size=12, max_size=19), st.integers(0, 18), st.integers(1, 9)
)
def test_luhn_catches_every_single_digit_error(number: str, pos: int, delta: int) -> None:
    valid = _luhn_complete(number[:-1])
    pos %= len(valid)
    wrong = valid[:pos] + str((int(valid[pos]) + delta) % 10) + valid[pos + 1 :]
    assert luhn_ok(valid)
    assert not luhn_ok(wrong)
    assert luhn_array([valid, wrong]).tolist() == [True, False]


def test_card_ok_rules() -> None:
    assert card_ok(CARDS["visa19"])
    assert not card_ok("1" + CARDS["visa16"][1:])  # no network starts with 1
    assert not card_ok(_luhn_complete("41111111111"))  # 12 digits: Maestro only


IBANS = [
    "DE89370400440532013000",
    "GB82WEST12345698765432",
    "FR1420041010050500013M02606",
    "NL91ABNA0417164300",
    "IT60X0542811101000000123456",
    "ES9121000418450200051332",
    "PL61109010140000071219812874",
    "CH9300762011623852957",
    "NO9386011117947",
]


@pytest.mark.parametrize("iban", IBANS)
def test_iban_compact_and_spaced(patterns_only: Scanner, iban: str) -> None:
    assert iban_ok(iban)
    spaced = " ".join(iban[i : i + 4] for i in range(0, len(iban), 4))
    assert found(patterns_only, f"IBAN {iban}, ref A1", "IBAN_CODE") == [iban]
    assert found(patterns_only, f"pay to {spaced} please", "IBAN_CODE") == [spaced]


def test_iban_with_wrong_check_digits_is_not_found(patterns_only: Scanner) -> None:
    assert not iban_ok("DE88370400440532013000")
    assert found(patterns_only, "IBAN DE88370400440532013000", "IBAN_CODE") == []


def test_ssn(patterns_only: Scanner) -> None:
    assert ssn_ok("123456789") and not ssn_ok("666123456") and not ssn_ok("123004567")
    assert found(patterns_only, "SSN 123-45-6789.", "US_SSN") == ["123-45-6789"]
    assert found(patterns_only, "her SSN is 123456789", "US_SSN") == ["123456789"]
    # Nine bare digits without an SSN context are not claimed as one.
    assert found(patterns_only, "order 123456789 shipped", "US_SSN") == []


@pytest.mark.parametrize(
    "phone",
    [
        "(415) 555-0132",
        "415-555-0132",
        "415.555.0132",
        "+1-415-555-0132x123",
        "+1 415 555 0132",
        "+44(0)20 7946 0958",
        "020 7946 0958",
        "+49(0)30 1234567",
        "030/1234567",
        "+33 1 42 68 53 00",
        "01 42 68 53 00",
        "+34 912 345 678",
        "+39 06 1234 5678",
        "+31(0)20-1234567",
        "(+358) 480342157",
        "+91 98765 43210",
        "+55 11 98765-4321",
        "08-915 000 80",
        "0521833786",
    ],
)
def test_phone_formats(patterns_only: Scanner, phone: str) -> None:
    assert found(patterns_only, f"Call me on {phone} after lunch.", "PHONE_NUMBER") == [phone]


@pytest.mark.parametrize(
    "text",
    [
        "Invoice 2024-03-05 - 2024-04-05 paid",
        "total 1,234.56 USD",
        "version 10.2.3",
        "ZIP 94107-1234",
        "at 10:30 today",
        "order #48213",
    ],
)
def test_not_phones(patterns_only: Scanner, text: str) -> None:
    assert found(patterns_only, text, "PHONE_NUMBER") == []


def test_ip_and_email(patterns_only: Scanner) -> None:
    text = (
        "login from 192.168.10.4 and 2001:db8::8a2e:370:7334 by jane.doe+x@mail.example.co.uk;"
        " build 1.2.3.4.5 and time 10:30:00 are not addresses"
    )
    assert found(patterns_only, text, "IP_ADDRESS") == ["192.168.10.4", "2001:db8::8a2e:370:7334"]
    assert found(patterns_only, text, "EMAIL_ADDRESS") == ["jane.doe+x@mail.example.co.uk"]
