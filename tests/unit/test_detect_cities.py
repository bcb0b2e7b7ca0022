"""LOCATION from the GeoNames city list: record fields, after a place preposition, the
biggest cities anywhere; names that are also cities stay names where a person is meant."""

from __future__ import annotations

import pytest

from veilflow.detect.gazetteers import cities
from veilflow.detect.scanner import Scanner, scanner_for


@pytest.fixture(scope="module")
def scanner() -> Scanner:
    return scanner_for()


def entities(scanner: Scanner, text: str) -> list[tuple[str, str]]:
    return [(text[s.start : s.end], s.entity) for s in scanner.scan_text(text)]


def test_the_list_holds_real_cities_and_not_common_words() -> None:
    c = cities()
    for city in ("Lyon", "Kraków", "München", "Köln", "Springfield", "Abu Dhabi", "Göteborg"):
        assert city in c.names
    assert "Tokyo" in c.major and "Sydney" not in c.major  # a given name: context decides
    for word in ("Of", "Date", "Best", "Nice", "Customer", "Order"):
        assert word not in c.names


@pytest.mark.parametrize(
    ("text", "city"),
    [
        ("Jane Doe;jane.doe@example.org;+1 555 123 4567;Lyon", "Lyon"),
        ("Marta Nowak | marta@example.pl | Kraków", "Kraków"),
        ("Ole Hansen\tole@example.dk\tOdense", "Odense"),
        ("Jens Weber, jens@example.de, 030 1234567, Nürnberg", "Nürnberg"),
        ("Jane Doe;jane.doe@example.org;Lake Jennifer", "Lake Jennifer"),  # a place by shape
        ("Jane Doe;jane.doe@example.org;Pearsonborough", "Pearsonborough"),
        ("Flight to Chicago tomorrow.", "Chicago"),
        ("She moved to Essen last year", "Essen"),
        ("Our office near Eindhoven opens soon", "Eindhoven"),
        ("Tokyo office called back", "Tokyo"),
    ],
)
def test_city_is_a_location(scanner: Scanner, text: str, city: str) -> None:
    assert (city, "LOCATION") in entities(scanner, text)


@pytest.mark.parametrize(
    ("text", "name"),
    [
        ("Regards, Clayton", "Clayton"),
        ("Thanks, Jackson", "Jackson"),
        ("Customer Sydney Farmer called from the office", "Sydney Farmer"),
    ],
)
def test_a_name_that_is_also_a_city_stays_a_name(scanner: Scanner, text: str, name: str) -> None:
    got = entities(scanner, text)
    assert (name, "PERSON") in got
    assert not any(e == "LOCATION" for _, e in got)


@pytest.mark.parametrize(
    "text",
    [
        "The best date for delivery is Friday.",
        "Email from Jackson about the order",
        "Meet at Target after work",
        "Nice work on the release",
    ],
)
def test_no_city_without_support(scanner: Scanner, text: str) -> None:
    assert not any(e == "LOCATION" for _, e in entities(scanner, text))


def test_a_pattern_scanner_builds_the_city_list_only_when_places_are_asked_for() -> None:
    # The gate's rescan of kept columns builds a pattern scanner in every mapped transform
    # task and never asks it for places: the city list (~1 CPU-second) must not be built.
    cities.cache_clear()
    scanner = Scanner(use_ner=False)
    found = scanner.scan(["card 4111 1111 1111 1111, moved to Lyon"], entities={"CREDIT_CARD"})
    assert [s.entity for s in found.spans[0]] == ["CREDIT_CARD"]
    assert cities.cache_info().currsize == 0
    places = scanner.scan(["She moved to Lyon last year."], entities={"LOCATION"})
    assert cities.cache_info().currsize == 1
    assert [s.entity for s in places.spans[0]] == ["LOCATION"]
