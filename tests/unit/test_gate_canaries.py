"""Canary values: obviously fake, shaped like the column, and found again in any form."""

from __future__ import annotations

import re

import pytest

from veilflow.transform.checksums import luhn_ok
from veilflow.validate.canaries import (
    FREE_TEXT_PATTERNS,
    _free_text,
    _kind,
    _shaped_like,
    _text_value,
    _whole_forms,
    evidence_forms,
    luhn_complete,
)


@pytest.mark.parametrize("body", ["7992739871x", "4111111111111110", "123456789012345x"])
def test_luhn_complete_gives_a_valid_number(body: str) -> None:
    digits = re.sub(r"\D", "0", body)
    assert luhn_ok(luhn_complete(digits))


def test_luhn_known_check_digit() -> None:
    # The textbook example: 7992739871 has check digit 3.
    assert luhn_complete("79927398710") == "79927398713"


def test_shape_is_kept_and_content_is_not() -> None:
    template = "AB12 cd-34"
    outs = {_shaped_like(template) for _ in range(20)}
    for out in outs:
        assert re.fullmatch(r"[A-Z]{2}\d{2} [a-z]{2}-\d{2}", out)
    assert len(outs) > 1


@pytest.mark.parametrize(
    ("name", "template", "kind"),
    [
        ("email", "a@b.org", "email"),
        ("contact", "x.y@z.com", "email"),
        ("ssn", "123-45-6789", "ssn"),
        ("credit_card", "4111 1111 1111 1111", "card"),
        ("ip_address", "10.0.0.1", "ip"),
        ("phone", "(415) 555-2671", "phone"),
        ("full_name", "Ann Lee", "person"),
        ("note", "long text", "free_text"),
        ("iban", "DE89370400440532013000", "shaped"),
    ],
)
def test_kind_of_column(name: str, template: str, kind: str) -> None:
    assert _kind(name, None, template) == kind


def test_values_are_obviously_fake() -> None:
    assert re.fullmatch(
        r"canary\.[0-9a-f]{8}@canary\.invalid", _text_value("email", "0a1b2c3d", None)
    )
    ssn = _text_value("ssn", "t", "123-45-6789")
    assert re.fullmatch(r"9\d\d-\d\d-\d{4}", ssn)  # the 9xx area is never issued
    card = _text_value("card", "t", "4111-1111-1111-1111")
    assert re.fullmatch(r"\d{4}-\d{4}-\d{4}-\d{4}", card) and luhn_ok(card.replace("-", ""))
    assert _text_value("ip", "t", None).startswith("192.0.2.")  # TEST-NET-1
    assert "555-01" in _text_value("phone", "t", "(415) 555-2671").replace(") ", "-")


def test_free_text_carries_findable_pii() -> None:
    text = _free_text({}, "0a1b2c3d")
    found = [m.group(m.lastindex or 0) for p in FREE_TEXT_PATTERNS for m in p.finditer(text)]
    assert len(found) == 4  # person, e-mail, phone, SSN


def test_evidence_forms() -> None:
    assert evidence_forms("912-34-5678") == {"912-34-5678", "912345678"}
    assert evidence_forms("Canary Abcdefgh") == {"Canary Abcdefgh", "canary abcdefgh"}
    assert evidence_forms("M") == set()  # too short to prove anything
    # Digits inside a mixed value are not evidence on their own.
    assert evidence_forms("canary-b1127167") == {"canary-b1127167"}


@pytest.mark.parametrize(
    ("text", "leaked"),
    [
        ("Spoke with Ian Lee today.", True),
        ("SPOKE WITH IAN LEE", True),
        ("ian lee", True),
        ("Spoke with Brian Leeds today.", False),  # a surrogate around the letters
        ("mail: canary.0a1b2c3d@canary.invalid!", True),
        ("SSN 912345678 on file", True),
        ("card 4111912345678011", False),  # the digits inside a longer number
        ("tok_v1_912345678", True),  # underscores separate words
        ("", False),
    ],
)
def test_canary_forms_match_whole_values_and_words_only(text: str, leaked: bool) -> None:
    forms = evidence_forms("Ian Lee") | evidence_forms("912-34-5678")
    forms |= evidence_forms("canary.0a1b2c3d@canary.invalid")
    assert (_whole_forms(forms)(text) is not None) is leaked
