"""Identifiers named by a context word (record, plan, account, licence, vehicle, device and
biometric numbers) and those with a format of their own (VIN, IMEI, MAC, GS1 UDI, MBI), in
notes, tickets, chats and letters; and what must not be taken for one."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from veilflow.detect.identifiers import card_grouped, id_token_ok
from veilflow.detect.scanner import Scanner
from veilflow.transform.checksums import imei_ok, luhn_ok, vin_ok


@pytest.fixture(scope="module")
def patterns_only() -> Scanner:
    return Scanner(use_ner=False)


def found(scanner: Scanner, text: str) -> list[tuple[str, str]]:
    return [(text[s.start : s.end], s.entity) for s in scanner.scan_text(text)]


@pytest.mark.parametrize(
    ("text", "value", "entity"),
    [
        # clinical notes
        ("MRN: 00482913. Pt seen in clinic.", "00482913", "MEDICAL_RECORD_NUMBER"),
        ("Medical record number 77-410-552 reviewed.", "77-410-552", "MEDICAL_RECORD_NUMBER"),
        ("Chart # A0049127, admitted overnight.", "A0049127", "MEDICAL_RECORD_NUMBER"),
        ("Hospital no. RX-118273; ward 4B.", "RX-118273", "MEDICAL_RECORD_NUMBER"),
        ("NHS number 943 476 5919 confirmed.", "943 476 5919", "MEDICAL_RECORD_NUMBER"),
        ("pt id=58812093 (transfer)", "58812093", "MEDICAL_RECORD_NUMBER"),
        # insurance / health plan
        ("Member ID: XJH-448812-01, group 5501.", "XJH-448812-01", "HEALTH_PLAN_ID"),
        ("Policy no. PLC99812004 is active.", "PLC99812004", "HEALTH_PLAN_ID"),
        ("Medicare # 1EG4-TE5-MK73 on the card.", "1EG4-TE5-MK73", "HEALTH_PLAN_ID"),
        ("subscriber id w884123901 verified by phone", "w884123901", "HEALTH_PLAN_ID"),
        ("Claim number CLM-2024-0045512 denied.", "CLM-2024-0045512", "HEALTH_PLAN_ID"),
        # tickets and chats about accounts
        ("acct #4455-2219 locked after 3 tries", "4455-2219", "ACCOUNT_NUMBER"),
        ("Customer no. C-000981233 asked for a refund.", "C-000981233", "ACCOUNT_NUMBER"),
        ("my account is AB12-99812 can u check", "AB12-99812", "ACCOUNT_NUMBER"),
        ("Billing account: 7710-0042-19", "7710-0042-19", "ACCOUNT_NUMBER"),
        # licences and certificates
        ("Driver's licence no. D1234567 (NY).", "D1234567", "LICENSE_NUMBER"),
        ("Certificate #C-99812 issued to the nurse.", "C-99812", "LICENSE_NUMBER"),
        ("DEA AB1234563 on the script.", "AB1234563", "LICENSE_NUMBER"),
        ("passport number 533380006 expired", "533380006", "LICENSE_NUMBER"),
        ("Badge 44812-K at the front desk.", "44812-K", "LICENSE_NUMBER"),
        # vehicles
        ("VIN 1HGCM82633A004352, silver sedan.", "1HGCM82633A004352", "VEHICLE_ID"),
        ("License plate 7ABC123 seen leaving.", "7ABC123", "VEHICLE_ID"),
        ("reg no. AB12 CDE (blue van)", "AB12 CDE", "VEHICLE_ID"),
        ("her car WYV-5178 was towed", "WYV-5178", "VEHICLE_ID"),
        # devices
        ("Pacemaker serial SN-88123-XK checked.", "SN-88123-XK", "DEVICE_ID"),
        ("S/N 4471AX22 on the pump.", "4471AX22", "DEVICE_ID"),
        ("Phone IMEI 490154203237518 reported lost.", "490154203237518", "DEVICE_ID"),
        ("device id: 7f3a9c21b8 paired", "7f3a9c21b8", "DEVICE_ID"),
        ("UDI (01)00844588003288(17)141120(10)7654321D on the box", None, "DEVICE_ID"),
        ("Router MAC 00:1A:2B:3C:4D:5E and 0011.2233.4455", "00:1A:2B:3C:4D:5E", "DEVICE_ID"),
        # biometrics
        ("Fingerprint template FP-88213-A on file.", "FP-88213-A", "BIOMETRIC_ID"),
        ("retina scan id RS7712301 enrolled", "RS7712301", "BIOMETRIC_ID"),
        ("Voiceprint hash 9f8a7c6d5e4b stored.", "9f8a7c6d5e4b", "BIOMETRIC_ID"),
        ("Facial template: FT-0091-2231", "FT-0091-2231", "BIOMETRIC_ID"),
    ],
)
def test_identifiers_in_several_styles(
    patterns_only: Scanner, text: str, value: str | None, entity: str
) -> None:
    got = found(patterns_only, text)
    if value is None:
        assert any(e == entity for _, e in got), got
    else:
        assert (value, entity) in got, got


@pytest.mark.parametrize(
    "text",
    [
        "The serial killer documentary aired; serial number not recorded.",
        "Account of events: the account was closed 3 days ago; account balance $1,234.56.",
        "Device model 4471 running firmware 10.2.3, version 2.14.7.",
        "Plate count 150000, platelets 250; the car park was full; vehicle 2 of 3.",
        "Licence fee 12.50; certificate of completion 2021; permit pending; badge reader off.",
        "Fingerprint reader model 44812; retina exam showed 20/40; iris 3 mm reactive.",
        "Policy 2.0 updated; privacy policy applies; member of staff; group therapy 3x weekly.",
        "Take 500mg twice; device 2.5 mg; a 65-year-old man; account 3-day trial.",
        "Patient seen at 10:30; MRN pending; chart reviewed 12/03/2021.",
        "Serial dilutions 1:10; device on 2021-03-04; account since 03/2019.",
        "order #437991, 2 items, ticket 48213, total 129.90 EUR",
    ],
)
def test_ordinary_numbers_and_words_are_not_identifiers(patterns_only: Scanner, text: str) -> None:
    entities = {
        "MEDICAL_RECORD_NUMBER",
        "HEALTH_PLAN_ID",
        "ACCOUNT_NUMBER",
        "LICENSE_NUMBER",
        "VEHICLE_ID",
        "DEVICE_ID",
        "BIOMETRIC_ID",
    }
    assert [(t, e) for t, e in found(patterns_only, text) if e in entities] == []


def test_without_its_context_word_a_token_is_not_an_identifier(patterns_only: Scanner) -> None:
    for text in ("Reference 00482913 attached.", "Code XJH-448812 applied.", "see 7ABC123"):
        assert found(patterns_only, text) == [] or all(
            e == "PHONE_NUMBER" for _, e in found(patterns_only, text)
        )


def test_capital_only_context_words(patterns_only: Scanner) -> None:
    assert ("4471AX22", "DEVICE_ID") in found(patterns_only, "SN: 4471AX22")
    # "sn" and "dl" in lower case are chat shorthand, not serial or licence numbers.
    assert found(patterns_only, "sn 4471ax22 lol") == []
    assert found(patterns_only, "dl 12345678 files") == []


def test_an_identifier_beats_the_phone_or_card_it_looks_like(patterns_only: Scanner) -> None:
    got = found(patterns_only, "MRN 4155550132; IMEI 490154203237518")
    assert ("4155550132", "MEDICAL_RECORD_NUMBER") in got
    assert ("490154203237518", "DEVICE_ID") in got
    assert not any(e in ("PHONE_NUMBER", "CREDIT_CARD") for _, e in got)


def test_vins_with_a_valid_check_digit_need_no_context(patterns_only: Scanner) -> None:
    assert ("1M8GDM9AXKP042788", "VEHICLE_ID") in found(
        patterns_only, "Towed 1M8GDM9AXKP042788 from lot B."
    )
    # One character changed: no check digit, no context, no VIN.
    assert found(patterns_only, "Towed 1M8GDM9AXKP042789 from lot B.") == []
    # A European VIN carries no check digit: its context word is enough.
    assert ("WVWZZZ1JZXW000001", "VEHICLE_ID") in found(patterns_only, "VIN: WVWZZZ1JZXW000001")


def test_faker_vins_and_plates() -> None:
    from faker import Faker

    fake = Faker("en_US")
    fake.seed_instance(17)
    scanner = Scanner(use_ner=False)
    vins = [fake.vin() for _ in range(50)]
    plates = [fake.license_plate() for _ in range(50)]
    texts = [f"Vehicle left, {v}." for v in vins] + [f"Plate {p} reported." for p in plates]
    spans = scanner.scan(texts).spans
    want = vins + plates
    missed = [
        w
        for w, t, sp in zip(want, texts, spans, strict=True)
        if (w, "VEHICLE_ID") not in [(t[s.start : s.end], s.entity) for s in sp]
    ]
    assert missed == []


_VIN_ALPHABET = "0123456789ABCDEFGHJKLMNPRSTUVWXYZ"


@given(st.text(alphabet=_VIN_ALPHABET, min_size=16, max_size=16), st.integers(0, 16))
def test_vin_check_digit_catches_a_changed_character(body: str, pos: int) -> None:
    vin = next(v for d in "0123456789X" if vin_ok(v := body[:8] + d + body[8:]))
    if pos == 8:
        return
    weights = (8, 7, 6, 5, 4, 3, 2, 10, 0, 9, 8, 7, 6, 5, 4, 3, 2)
    changed = {c for c in _VIN_ALPHABET if c != vin[pos]}
    # A change that keeps the weighted sum mod 11 (transliteration collisions) is invisible
    # to any check digit; every other one is caught.
    values = {
        **{str(d): d for d in range(10)},
        **dict(zip("ABCDEFGH", range(1, 9), strict=True)),
        **dict(zip("JKLMN", range(1, 6), strict=True)),
        "P": 7,
        "R": 9,
        **dict(zip("STUVWXYZ", range(2, 10), strict=True)),
    }
    for c in changed:
        other = vin[:pos] + c + vin[pos + 1 :]
        visible = (values[c] - values[vin[pos]]) * weights[pos] % 11 != 0
        assert vin_ok(other) is not visible


@given(st.text(alphabet="0123456789", min_size=14, max_size=14))
def test_imei_is_luhn_over_fifteen_digits(body: str) -> None:
    imei = next(body + d for d in "0123456789" if luhn_ok(body + d))
    assert imei_ok(imei)
    assert not imei_ok(imei[:-1] + str((int(imei[-1]) + 1) % 10))
    assert not imei_ok(imei[:-1])


_TOKEN = st.from_regex(r"(?:[A-Z]{1,3}-?)?[0-9]{5,9}(?:-[A-Z0-9]{1,3})?", fullmatch=True)
_CONTEXT = st.sampled_from(
    [
        ("MRN", "MEDICAL_RECORD_NUMBER"),
        ("Member ID", "HEALTH_PLAN_ID"),
        ("acct no.", "ACCOUNT_NUMBER"),
        ("licence #", "LICENSE_NUMBER"),
        ("serial", "DEVICE_ID"),
        ("fingerprint id", "BIOMETRIC_ID"),
    ]
)
_GLUE = st.sampled_from([" ", ": ", " is ", " - ", " #", "="])


@settings(max_examples=150, deadline=None)
@given(_CONTEXT, _GLUE, _TOKEN)
def test_any_identifier_shape_after_its_context_word(
    context: tuple[str, str], glue: str, token: str
) -> None:
    word, entity = context
    text = f"Noted {word}{glue}{token} today."
    got = [(text[s.start : s.end], s.entity) for s in _SCANNER.scan_text(text)]
    if entity == "ACCOUNT_NUMBER" and token.isdigit() and len(token) >= 8:
        entity = "US_BANK_NUMBER"  # digits only after "account": a bank account number
    assert (token, entity) in got, got


@pytest.mark.parametrize(
    ("text", "want"),
    [
        # Bug: 564751016564 passes Luhn as a 12-digit Maestro number, and a card outranks a
        # record number, so the MRN was reported as a CREDIT_CARD.
        ("Noted MRN 564751016-564 today.", [("564751016-564", "MEDICAL_RECORD_NUMBER")]),
        ("Noted licence # 572547876-746 today.", [("572547876-746", "LICENSE_NUMBER")]),
        # Bug: the longest phrase "serial no" / "serial id" took the token's own letters.
        ("Noted serial NO-700043 today.", [("NO-700043", "DEVICE_ID")]),
        ("Noted serial ID-700043 today.", [("ID-700043", "DEVICE_ID")]),
        # Printed as a card, a Luhn-valid number stays a card, context word or none.
        ("Paid with 5647 5101 6564 today.", [("5647 5101 6564", "CREDIT_CARD")]),
        ("Noted MRN 5647 5101 6564 today.", [("5647 5101 6564", "CREDIT_CARD")]),
    ],
)
def test_a_named_identifier_beats_a_number_not_grouped_like_a_card(
    patterns_only: Scanner, text: str, want: list[tuple[str, str]]
) -> None:
    assert found(patterns_only, text) == want


def test_card_groupings() -> None:
    for ok in ("4111111111111111", "4111 1111 1111 1111", "3782-822463-10005", "3056 930902 5904"):
        assert card_grouped(ok), ok
    for bad in ("564751016-564", "56-4751016564", "5647 51 0165 64", "411 1111 1111 1111"):
        assert not card_grouped(bad), bad


@given(st.integers(0, 9999), st.sampled_from(["MRN", "serial", "account", "policy no"]))
def test_short_numbers_after_context_words_are_not_identifiers(n: int, word: str) -> None:
    text = f"{word} {n} updated"
    assert not [s for s in _SCANNER.scan_text(text) if s.entity != "PHONE_NUMBER"]


def test_token_shapes() -> None:
    for ok in ("00482913", "XJH-448812", "4471AX22", "A0049127", "7f3a9c21b8", "C-99812"):
        assert id_token_ok(ok), ok
    for bad in ("2021-03-04", "10:30:15", "10.2.3", "12.50", "20/40", "500mg", "65-year-old"):
        assert not id_token_ok(bad), bad
    assert not id_token_ok("ABCD1") and not id_token_ok("1234")


_SCANNER = Scanner(use_ner=False)


@pytest.mark.parametrize(
    ("text", "value", "entity"),
    [
        ("account_no: 4471093826", "4471093826", "US_BANK_NUMBER"),
        ("acct_no=55512345678", "55512345678", "US_BANK_NUMBER"),
        ("account_no 3859-2017-46", "3859-2017-46", "ACCOUNT_NUMBER"),
        ("mrn_id: 00482913", "00482913", "MEDICAL_RECORD_NUMBER"),
        ("phone_number: 555-123-4567", "555-123-4567", "PHONE_NUMBER"),
    ],
)
def test_field_names_with_underscores_are_context_words(
    patterns_only: Scanner, text: str, value: str, entity: str
) -> None:
    # Bug: "account_no: 4471093826" was a PHONE_NUMBER; the underscore hid the context word.
    spans = patterns_only.scan_text(text)
    assert [(s.entity, text[s.start : s.end]) for s in spans] == [(entity, value)]
