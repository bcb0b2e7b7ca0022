"""Where a split's names, places and phone numbers come from: Faker's locale lists (train)
or mimesis's locale datasets (heldout), each loaded once per process.

Names are kept only when they look like a name (letters, with spaces, hyphens or
apostrophes between parts, capitalised). A split marked ``exclude_gazetteer_names`` also
drops every name with a word the scanner's PERSON lists know (``known_name_words``), compared
case- and accent-blind, so that detection on it cannot come from having seen its names.
"""

from __future__ import annotations

import importlib
import json
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache, lru_cache
from importlib.metadata import version
from importlib.resources import files
from typing import Any

from faker import Faker

from veilflow.corpus.values import Draw

_NAME_SHAPE = re.compile(r"^[^\W\d_]+(?:[ '’-][^\W\d_]+)*$")
_NAME_WORDS = re.compile(r"[^\W\d_]+")


def fold(word: str) -> str:
    """Case- and accent-blind form of a word: ``Jönsson`` → ``jonsson``."""
    decomposed = unicodedata.normalize("NFKD", word.casefold())
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def ascii_slug(text: str) -> str:
    """Lower-case ASCII letters and digits of ``text`` (for e-mail local parts, handles)."""
    return "".join(c for c in fold(text) if c.isascii() and c.isalnum())


def name_words(name: str) -> list[str]:
    """The words of a name: ``Huttu-Juntunen`` → ``Huttu``, ``Juntunen``."""
    return _NAME_WORDS.findall(name)


@lru_cache(maxsize=1)
def known_name_words() -> frozenset[str]:
    """Every word the scanner's PERSON rules know as a name (given names, surnames, and the
    given names it accepts only with confirmation), folded."""
    from veilflow.detect.gazetteers import AMBIGUOUS_GIVEN, gazetteers

    g = gazetteers()
    return frozenset(fold(w) for w in g.given | g.surnames | AMBIGUOUS_GIVEN)


def _is_name(name: str) -> bool:
    return bool(_NAME_SHAPE.match(name)) and name[:1].isupper()


@dataclass(frozen=True)
class NamePool:
    """One locale's given names and surnames, as used, with what filtering removed."""

    locale: str
    given: tuple[str, ...]
    surnames: tuple[str, ...]
    dropped_shape: int
    dropped_known: int


def _pool(
    locale: str, given: Iterable[str], surnames: Iterable[str], exclude_known: bool
) -> NamePool:
    known = known_name_words() if exclude_known else frozenset()
    kept: list[list[str]] = [[], []]
    shape = unknown = 0
    for out, names in zip(kept, (set(given), set(surnames)), strict=True):
        for name in sorted(names):
            if not _is_name(name):
                shape += 1
            elif any(fold(w) in known for w in name_words(name)):
                unknown += 1
            else:
                out.append(name)
    return NamePool(locale, tuple(kept[0]), tuple(kept[1]), shape, unknown)


def _flat(value: Any) -> list[str]:
    """A list of names, or mimesis's lists by gender (``{"female": [...], "male": [...]}``)."""
    if isinstance(value, dict):
        return [n for names in value.values() for n in _flat(names)]
    return [str(n) for n in value]


def _faker_list(value: Any) -> list[str]:
    """A Faker name list: a tuple, or a mapping of name → weight."""
    return [str(n) for n in (value.keys() if isinstance(value, dict) else value)]


@cache
def faker_names(locale: str, exclude_known: bool) -> NamePool:
    provider = importlib.import_module(f"faker.providers.person.{locale}").Provider
    given: list[str] = []
    surnames: list[str] = []
    # Every list a locale has: first_names_female, last_names, male_last_names (pl_PL), ...
    for attr in sorted(dir(provider)):
        value = getattr(provider, attr)
        if not isinstance(value, (tuple, list, dict)):
            continue
        if "first_names" in attr:
            given += _faker_list(value)
        elif "last_names" in attr:
            surnames += _faker_list(value)
    return _pool(locale, given, surnames, exclude_known)


@cache
def mimesis_data(dataset: str, topic: str) -> dict[str, Any]:
    """One of mimesis's bundled locale datasets, e.g. ``("fi", "person")``."""
    path = files("mimesis") / "datasets" / dataset / f"{topic}.json"
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


@cache
def mimesis_names(locale: str, dataset: str, exclude_known: bool) -> NamePool:
    person = mimesis_data(dataset, "person")
    return _pool(locale, _flat(person["names"]), _flat(person["surnames"]), exclude_known)


@lru_cache(maxsize=1)
def mimesis_email_domains() -> tuple[str, ...]:
    from mimesis.datasets.int.internet import EMAIL_DOMAINS

    return tuple(d.lstrip("@") for d in EMAIL_DOMAINS)


def source_version(source: str) -> str:
    return f"{source} {version(source)}"


class FakerPlaces:
    """Places and phone numbers of one locale from a seeded Faker instance."""

    def __init__(self, locale: str, seed: int) -> None:
        self.fake = Faker(locale)
        self.fake.seed_instance(seed)
        self.locale = locale
        # Some locales build a list from a set at import (it_IT's cities), so its order, and
        # what a seed draws from it, would follow the interpreter's string-hash seed.
        for provider in self.fake.providers:
            cities = getattr(provider, "cities", None)
            if isinstance(cities, list):
                provider.cities = sorted(cities)

    def city(self, d: Draw) -> str:
        return " ".join(str(self.fake.city()).split())

    def street(self, d: Draw) -> str:
        return " ".join(str(self.fake.street_address()).split())

    def address(self, d: Draw) -> str:
        lines = [" ".join(line.split()) for line in str(self.fake.address()).splitlines()]
        return ", ".join(line for line in lines if line)

    def phone(self, d: Draw) -> str:
        return " ".join(str(self.fake.phone_number()).split())

    def email_domain(self, d: Draw) -> str:
        return str(self.fake.free_email_domain())


class MimesisPlaces:
    """Places and phone numbers of one locale from mimesis's dataset, drawn with ``Draw``."""

    def __init__(self, locale: str, dataset: str, layouts: tuple[str, ...]) -> None:
        self.locale = locale
        address = mimesis_data(dataset, "address")
        self.cities: tuple[str, ...] = tuple(address["city"])
        street = address["street"]
        self.street_names: tuple[str, ...] = tuple(street["name"])
        self.street_suffixes: tuple[str, ...] = tuple(street.get("suffix", ()))
        self.street_fmt: str = address["address_fmt"]
        self.postal_fmt: str = address["postal_code_fmt"]
        self.phone_fmts: tuple[str, ...] = tuple(mimesis_data(dataset, "person")["telephone_fmt"])
        self.layouts = layouts

    def city(self, d: Draw) -> str:
        return d.pick(self.cities)

    def street(self, d: Draw) -> str:
        out = self.street_fmt.format(
            st_name=d.pick(self.street_names),
            st_sfx=d.pick(self.street_suffixes) if self.street_suffixes else "",
            st_num=d.between(1, 199),
        )
        return " ".join(out.split())

    def address(self, d: Draw) -> str:
        layout = d.pick(self.layouts)
        return layout.format(
            street=self.street(d), postal=d.mask(self.postal_fmt), city=self.city(d)
        )

    def phone(self, d: Draw) -> str:
        return d.mask(d.pick(self.phone_fmts))

    def email_domain(self, d: Draw) -> str:
        return d.pick(mimesis_email_domains())
