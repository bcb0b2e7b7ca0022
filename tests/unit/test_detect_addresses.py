"""A postal address is one LOCATION span: house number, street, flat or suite, city, state
or region, postcode and country where they stand together, in several countries' layouts;
and a street alone stays a street, a postcode alone a postcode."""

from __future__ import annotations

import pytest
from faker import Faker

from veilflow.detect.scanner import Scanner


@pytest.fixture(scope="module")
def patterns_only() -> Scanner:
    return Scanner(use_ner=False)


def found(scanner: Scanner, text: str) -> list[tuple[str, str]]:
    return [(text[s.start : s.end], s.entity) for s in scanner.scan_text(text)]


@pytest.mark.parametrize(
    ("text", "address"),
    [
        (
            "Ship to 4471 Oak Street, Apt 3B, Springfield, IL 62704 by Monday.",
            "4471 Oak Street, Apt 3B, Springfield, IL 62704",
        ),
        (
            "Lives at 22 Main St., Boston, MA 02118-4411 with her son.",
            "22 Main St., Boston, MA 02118-4411",
        ),
        (
            "Lives at Flat 2, 14 Baker Street, London NW1 6XE with her son.",
            "Flat 2, 14 Baker Street, London NW1 6XE",
        ),
        ("Mail to PO Box 1234, Austin, TX 78701.", "PO Box 1234, Austin, TX 78701"),
        (
            "Unit 4/17 George St, Sydney NSW 2000, Australia",
            "Unit 4/17 George St, Sydney NSW 2000, Australia",
        ),
        ("Address: Hauptstraße 5, 10115 Berlin, Germany.", "Hauptstraße 5, 10115 Berlin, Germany"),
        (
            "Send it to 12, rue de la Paix, 75002 Paris, France please.",
            "12, rue de la Paix, 75002 Paris, France",
        ),
        (
            "Home: 88 Maple Avenue Suite 210, Toronto, ON M5V 2T6",
            "88 Maple Avenue Suite 210, Toronto, ON M5V 2T6",
        ),
        ("Post to 8/421 Jasmine Point, Lake Amy, NSW, 2982.", None),
        ("Adres: Emilylaan 6, 8234 AO, Slijkenburg", "Emilylaan 6, 8234 AO, Slijkenburg"),
        ("patient lives at 9 Acacia Close, Leeds.", "9 Acacia Close, Leeds"),
        ("Shipped to 28813 Derek Drive, Lake Jennifer.", "28813 Derek Drive, Lake Jennifer"),
    ],
)
def test_whole_postal_addresses(patterns_only: Scanner, text: str, address: str | None) -> None:
    got = found(patterns_only, text)
    locations = [t for t, e in got if e == "LOCATION"]
    if address is None:  # all of it, from the first digit, but the full stop
        start = next(i for i, ch in enumerate(text) if ch.isdigit())
        address = text[start:].rstrip(".")
    assert address in locations, got
    assert not any(e == "ZIP_CODE" for _, e in got), got


def test_a_multi_line_address_is_one_span(patterns_only: Scanner) -> None:
    text = "Patient lives at 221B Baker Street\nLondon NW1 6XE\nTel 020 7946 0958"
    got = found(patterns_only, text)
    assert ("221B Baker Street\nLondon NW1 6XE", "LOCATION") in got, got
    assert ("020 7946 0958", "PHONE_NUMBER") in got


def test_a_city_and_postcode_line_is_one_span(patterns_only: Scanner) -> None:
    assert ("Springfield, IL 62704", "LOCATION") in found(
        patterns_only, "Springfield, IL 62704 is the billing city."
    )


def test_parts_that_do_not_stand_together_stay_apart(patterns_only: Scanner) -> None:
    got = found(patterns_only, "The parcel for 55 Main Street Monday morning was late.")
    assert ("55 Main Street", "LOCATION") in got
    assert ("Monday", "DATE_TIME") in got
    got = found(patterns_only, "Sent to 10 Downing Street, John said, on time.")
    assert ("10 Downing Street", "LOCATION") in got
    assert ("ZIP 94107", "LOCATION") not in found(patterns_only, "ZIP 94107 only")


@pytest.mark.parametrize("locale", ["en_US", "en_GB", "en_AU", "de_DE", "fr_FR", "nl_NL"])
def test_faker_addresses_are_covered_from_house_number_to_postcode(locale: str) -> None:
    """Every character of a generated one-line address lies in LOCATION spans, and at least
    the street with its house number is one span, in every layout the locales use."""
    fake = Faker(locale)
    fake.seed_instance(23)
    scanner = Scanner(use_ner=False)
    addresses = [fake.address().replace("\n", ", ") for _ in range(40)]
    texts = [f"Delivery address: {a}." for a in addresses]
    covered = 0
    for a, t, spans in zip(addresses, texts, scanner.scan(texts).spans, strict=True):
        start = t.index(a)
        locs = [s for s in spans if s.entity == "LOCATION"]
        if any(s.start <= start + 1 and s.end >= start + len(a) - 1 for s in locs):
            covered += 1
    # Generated addresses include shapes no rule claims to cover (a bare street name with
    # no house number); most must still come out whole.
    assert covered >= 0.6 * len(addresses), (locale, covered)
