"""The corpus's splits as their data files define them: ``data/splits.yaml`` (which names,
places, locales and formats a split draws from) and each split's templates file, parsed into
``Template`` pieces with their slots checked; and the slot kinds with the entity each plants.

``corpus.generate`` fills the templates into labeled texts.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cache, lru_cache
from importlib.resources import files
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict

from veilflow.corpus.sources import NamePool, faker_names, mimesis_names

SPLITS = ("train", "heldout")

#: Slot kind → the entity it plants (None: a distractor, not personal data).
SLOTS: dict[str, str | None] = {
    "full": "PERSON",
    "given": "PERSON",
    "surname": "PERSON",
    "initial": "PERSON",
    "given_lc": "PERSON",
    "full_lc": "PERSON",
    "email": "EMAIL_ADDRESS",
    "phone": "PHONE_NUMBER",
    "ssn": "US_SSN",
    "card": "CREDIT_CARD",
    "iban": "IBAN_CODE",
    "ipv4": "IP_ADDRESS",
    "ipv6": "IP_ADDRESS",
    "date": "DATE_TIME",
    "dob": "DATE_TIME",
    "date_words": "DATE_TIME",
    "weekday": "DATE_TIME",
    "time": "DATE_TIME",
    "datetime": "DATE_TIME",
    "city": "LOCATION",
    "street": "LOCATION",
    "address": "LOCATION",
    "url": "URL",
    "mrn": "MEDICAL_RECORD_NUMBER",
    "account": "ACCOUNT_NUMBER",
    "plan_id": "HEALTH_PLAN_ID",
    "license": "LICENSE_NUMBER",
    "vin": "VEHICLE_ID",
    "plate": "VEHICLE_ID",
    "imei": "DEVICE_ID",
    "mac": "DEVICE_ID",
    "serial": "DEVICE_ID",
    "biometric": "BIOMETRIC_ID",
    "photo": "PHOTO_FILE",
    "old_age": "AGE_OVER_89",
    # distractors
    "order": None,
    "ticket": None,
    "amount": None,
    "version": None,
    "count": None,
    "room": None,
    "http": None,
    "drug": None,
    "dose": None,
    "product": None,
    "department": None,
    "lab": None,
    "bp": None,
    "temp": None,
    "weight": None,
    "age": None,
    "duration": None,
}
#: Every entity the corpus labels, in a stable order.
ENTITIES: tuple[str, ...] = tuple(dict.fromkeys(e for e in SLOTS.values() if e is not None))
#: Slots that may name a person ({email:a} is person a's address).
_PERSON_SLOTS = frozenset(
    {"full", "given", "surname", "initial", "given_lc", "full_lc", "email", "url", "photo"}
)
_SLOT = re.compile(r"\{([a-z_0-9]+)(?::([a-z]))?\}")


class CorpusError(ValueError):
    """A template or split definition the generator cannot use (names file and template)."""


# -- data files ----------------------------------------------------------------------------


class _SplitFile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    description: str
    names: Literal["faker", "mimesis"]
    places: Literal["faker", "mimesis"]
    templates: str
    locales: list[str] | dict[str, str]
    top_level_domains: dict[str, str]
    iban_countries: list[str]
    url_patterns: list[str]
    address_layouts: dict[str, list[str]] = {}
    exclude_gazetteer_names: bool
    #: More locales a person's name may come from (names only, Faker splits).
    name_locales: list[str] = []
    #: Share of persons named from the text's own locale (the others from any name locale).
    own_locale_names: float = 0.8
    #: Value formats this split adds to the shared ``formats.yaml`` lists, by list name.
    extra_formats: dict[str, list[str]] = {}
    #: Share of chat texts written all in lower case, as people type in chats.
    lowercase_chats: float = 0.0
    #: Share of a template's full names written as the given name or the surname alone.
    single_names: float = 0.0


class _Formats(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    date_numeric: list[str]
    date_words: list[str]
    time: list[str]
    datetime: list[str]
    medical_record_number: list[str]
    account_number: list[str]
    health_plan_id: list[str]
    license_number: list[str]
    vehicle_plate: list[str]
    device_serial: list[str]
    biometric_id: list[str]
    photo_file: list[str]
    distractors: dict[str, list[str]]


@dataclass(frozen=True)
class Template:
    """One template: ``split/family/NN`` and its pieces (literal, slot kind, person ref)."""

    id: str
    family: str
    text: str
    pieces: tuple[tuple[str, str | None, str | None], ...]

    @property
    def kinds(self) -> frozenset[str]:
        return frozenset(k for _, k, _ in self.pieces if k is not None)


@dataclass(frozen=True)
class Split:
    """A split as its data file defines it."""

    name: str
    description: str
    name_source: str
    place_source: str
    locales: tuple[str, ...]
    datasets: dict[str, str]  # locale → mimesis dataset (mimesis splits)
    templates_file: str
    templates: tuple[Template, ...]
    tlds: dict[str, str]
    iban_countries: tuple[str, ...]
    url_patterns: tuple[str, ...]
    address_layouts: dict[str, tuple[str, ...]]
    exclude_gazetteer_names: bool
    name_locales: tuple[str, ...] = ()
    own_locale_names: float = 0.8
    extra_formats: dict[str, tuple[str, ...]] = field(default_factory=dict)
    lowercase_chats: float = 0.0
    single_names: float = 0.0

    @property
    def all_name_locales(self) -> tuple[str, ...]:
        """The text locales, then the further locales names may come from."""
        return self.locales + tuple(x for x in self.name_locales if x not in self.locales)

    def formats_of(self, kind: str, shared: list[str]) -> list[str]:
        """A shared format list with what this split adds to it."""
        return shared + list(self.extra_formats.get(kind, ()))

    @property
    def families(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(t.family for t in self.templates))

    def by_family(self, family: str) -> tuple[Template, ...]:
        return tuple(t for t in self.templates if t.family == family)


def _data(name: str) -> str:
    return (files("veilflow.corpus") / "data" / name).read_text(encoding="utf-8")


def _parse(split: str, family: str, index: int, text: str, where: str) -> Template:
    pieces: list[tuple[str, str | None, str | None]] = []
    pos = 0
    for m in _SLOT.finditer(text):
        kind, ref = m.group(1), m.group(2)
        if kind not in SLOTS:
            raise CorpusError(f"{where}: {family} template {index + 1}: unknown slot {{{kind}}}")
        if ref is not None and kind not in _PERSON_SLOTS:
            raise CorpusError(
                f"{where}: {family} template {index + 1}: {{{kind}}} takes no person ref"
            )
        pieces.append((text[pos : m.start()], kind, ref))
        pos = m.end()
    pieces.append((text[pos:], None, None))
    if "{" in "".join(p for p, _, _ in pieces) or "}" in "".join(p for p, _, _ in pieces):
        raise CorpusError(f"{where}: {family} template {index + 1}: unbalanced brace")
    return Template(f"{split}/{family}/{index + 1:02d}", family, text, tuple(pieces))


@cache
def load_split(name: str) -> Split:
    """A split from ``data/splits.yaml`` and its templates file (loaded once)."""
    spec_all = yaml.safe_load(_data("splits.yaml"))
    if name not in spec_all:
        raise CorpusError(f"no split {name!r}; splits are {sorted(spec_all)}")
    spec = _SplitFile.model_validate(spec_all[name])
    raw = yaml.safe_load(_data(spec.templates))
    templates = tuple(
        _parse(name, family, i, text, spec.templates)
        for family, texts in raw.items()
        for i, text in enumerate(texts)
    )
    locales = spec.locales if isinstance(spec.locales, list) else list(spec.locales)
    datasets = spec.locales if isinstance(spec.locales, dict) else {}
    return Split(
        name=name,
        description=" ".join(spec.description.split()),
        name_source=spec.names,
        place_source=spec.places,
        locales=tuple(locales),
        datasets=dict(datasets),
        templates_file=spec.templates,
        templates=templates,
        tlds=dict(spec.top_level_domains),
        iban_countries=tuple(spec.iban_countries),
        url_patterns=tuple(spec.url_patterns),
        address_layouts={k: tuple(x) for k, x in spec.address_layouts.items()},
        exclude_gazetteer_names=spec.exclude_gazetteer_names,
        name_locales=tuple(spec.name_locales),
        own_locale_names=spec.own_locale_names,
        extra_formats={k: tuple(x) for k, x in spec.extra_formats.items()},
        lowercase_chats=spec.lowercase_chats,
        single_names=spec.single_names,
    )


@lru_cache(maxsize=1)
def formats() -> _Formats:
    return _Formats.model_validate(yaml.safe_load(_data("formats.yaml")))


def name_pools(split: Split) -> dict[str, NamePool]:
    """Each locale's names as the split uses them (filtered, loaded once per process)."""
    if split.name_source == "faker":
        return {
            loc: faker_names(loc, split.exclude_gazetteer_names) for loc in split.all_name_locales
        }
    return {
        loc: mimesis_names(loc, split.datasets[loc], split.exclude_gazetteer_names)
        for loc in split.locales
    }
