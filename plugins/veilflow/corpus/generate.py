"""Labeled texts from a split's templates: every identifier planted is a ``Label`` whose
character offsets hold exactly its text.

    docs = generate("heldout", 3000, seed=20261204)
    docs[0].text, docs[0].labels      # str, (Label(start, end, entity, kind, text), ...)

Span conventions (what a label covers): a person's name without title or possessive
("Dr. [Korhonen]'s"); a whole postal address as one LOCATION, a city or a street line alone
as one; a date, weekday, time or date-time as one DATE_TIME; for an age over 89 the number
only ("[94]-year-old"); an identifier as printed, including a prefix that belongs to it
("[MRN1234567]", "[FP-12345678]") but not a field name before it ("MRN [00482913]").

The splits, their templates and the slot kinds are ``corpus.splits``'s.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, time
from typing import Any

import numpy as np

from veilflow.corpus import values as v
from veilflow.corpus.sources import (
    FakerPlaces,
    MimesisPlaces,
    NamePool,
    ascii_slug,
)
from veilflow.corpus.splits import (
    SLOTS,
    SPLITS,
    Split,
    Template,
    formats,
    load_split,
    name_pools,
)
from veilflow.corpus.values import Draw

DEFAULT_SEED = 20261204

_FIELD = re.compile(r"\{([A-Za-z]+)\}")

_MONTHS = (
    "January February March April May June July August September October November December"
).split()
_WEEKDAYS = "Monday Tuesday Wednesday Thursday Friday Saturday Sunday".split()
_ORDINAL_WORDS = (
    "first second third fourth fifth sixth seventh eighth ninth tenth eleventh twelfth "
    "thirteenth fourteenth fifteenth sixteenth seventeenth eighteenth nineteenth twentieth "
    "twenty-first twenty-second twenty-third twenty-fourth twenty-fifth twenty-sixth "
    "twenty-seventh twenty-eighth twenty-ninth thirtieth thirty-first"
).split()


# -- documents -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Label:
    """``text[start:end]`` is ``self.text``, an ``entity`` planted by a ``kind`` of slot."""

    start: int
    end: int
    entity: str
    kind: str
    text: str


@dataclass(frozen=True)
class Doc:
    text: str
    labels: tuple[Label, ...]
    split: str
    family: str
    template: str
    locale: str


@dataclass
class _Person:
    given: str
    surname: str
    locale: str


@dataclass
class _Context:
    d: Draw
    split: Split
    locale: str
    places: Any  # FakerPlaces | MimesisPlaces of the text's locale
    pools: dict[str, NamePool]
    persons: dict[str, _Person] = field(default_factory=dict)


def _person(c: _Context, ref: str | None) -> _Person:
    if ref is not None and ref in c.persons:
        return c.persons[ref]
    d = c.d
    locale = c.locale if d.chance(c.split.own_locale_names) else d.pick(c.split.all_name_locales)
    pool = c.pools[locale]
    surname = d.pick(pool.surnames)
    shape = d.rng.random()
    if shape < 0.08:  # hyphenated double surname
        other = d.pick(pool.surnames)
        surname = f"{surname}-{other}" if other != surname else surname
    elif shape < 0.14:  # compound surname of two words
        other = d.pick(pool.surnames)
        surname = f"{surname} {other}" if other != surname else surname
    p = _Person(d.pick(pool.given), surname, locale)
    if ref is not None:
        c.persons[ref] = p
    return p


def _fill(d: Draw, pattern: str, fields: dict[str, str]) -> str:
    """``{field}`` from ``fields``, then the mask characters of what is left."""
    out = []
    pos = 0
    for m in _FIELD.finditer(pattern):
        out.append(d.mask(pattern[pos : m.start()]))
        out.append(fields[m.group(1)])
        pos = m.end()
    out.append(d.mask(pattern[pos:]))
    return "".join(out)


def _date_fields(day: date, moment: time | None = None) -> dict[str, str]:
    moment = moment or time(0, 0)
    h12 = moment.hour % 12 or 12
    ampm = "am" if moment.hour < 12 else "pm"
    return {
        "d": str(day.day),
        "dd": f"{day.day:02d}",
        "m": str(day.month),
        "mm": f"{day.month:02d}",
        "yy": f"{day.year % 100:02d}",
        "yyyy": str(day.year),
        "month": _MONTHS[day.month - 1],
        "mon": _MONTHS[day.month - 1][:3],
        "weekday": _WEEKDAYS[day.weekday()],
        "wd": _WEEKDAYS[day.weekday()][:3],
        "ord": v.ordinal(day.day),
        "ordw": _ORDINAL_WORDS[day.day - 1],
        "H": str(moment.hour),
        "HH": f"{moment.hour:02d}",
        "h": str(h12),
        "MM": f"{moment.minute:02d}",
        "ampm": ampm,
        "AMPM": ampm.upper(),
    }


def _moment(d: Draw) -> time:
    return time(d.between(6, 21), d.pick((0, 0, 15, 30, 45, d.below(60))))


def _recent(d: Draw) -> date:
    return v.day(d, date(2015, 1, 1), date(2026, 12, 31))


def _email(c: _Context, ref: str | None) -> str:
    p = _person(c, ref)
    d = c.d
    g, s = ascii_slug(p.given) or "user", ascii_slug(p.surname.split()[0]) or "mail"
    local = d.pick(
        (f"{g}.{s}", f"{g}{s}", f"{g[0]}{s}", f"{s}.{g}", f"{g}.{s}{d.between(1, 99)}", f"{g}_{s}")
    )
    return f"{local}@{c.places.email_domain(d)}"


def _handle(d: Draw, p: _Person) -> str:
    g, s = ascii_slug(p.given), ascii_slug(p.surname)
    return d.pick((f"{g}{s}", f"{g}.{s}", f"{g}-{s}", f"{g}{s}{d.between(1, 99)}"))


def _value(c: _Context, kind: str, ref: str | None) -> str:
    d, f, fmt = c.d, formats(), c.split.formats_of
    fill: dict[str, Callable[[], str]] = {
        "full": lambda: (lambda p: f"{p.given} {p.surname}")(_person(c, ref)),
        "given": lambda: _person(c, ref).given,
        "surname": lambda: _person(c, ref).surname,
        "initial": lambda: (lambda p: f"{p.given[0]}. {p.surname}")(_person(c, ref)),
        "given_lc": lambda: _person(c, ref).given.lower(),
        "full_lc": lambda: (lambda p: f"{p.given} {p.surname}".lower())(_person(c, ref)),
        "email": lambda: _email(c, ref),
        "phone": lambda: c.places.phone(d),
        "ssn": lambda: v.ssn(d),
        "card": lambda: v.card(d),
        "iban": lambda: v.iban(d, d.pick(c.split.iban_countries)),
        "ipv4": lambda: v.ipv4(d),
        "ipv6": lambda: v.ipv6(d),
        "date": lambda: _fill(
            d, d.pick(fmt("date_numeric", f.date_numeric)), _date_fields(_recent(d))
        ),
        "dob": lambda: _fill(
            d,
            d.pick(fmt("date_numeric", f.date_numeric) + f.date_words[:4]),
            _date_fields(v.day(d, date(1925, 1, 1), date(2006, 12, 31))),
        ),
        "date_words": lambda: _fill(
            d, d.pick(fmt("date_words", f.date_words)), _date_fields(_recent(d))
        ),
        "weekday": lambda: d.pick(_WEEKDAYS),
        "time": lambda: _fill(
            d, d.pick(fmt("time", f.time)), _date_fields(date(2026, 1, 1), _moment(d))
        ),
        "datetime": lambda: _fill(
            d, d.pick(fmt("datetime", f.datetime)), _date_fields(_recent(d), _moment(d))
        ),
        "city": lambda: c.places.city(d),
        "street": lambda: c.places.street(d),
        "address": lambda: c.places.address(d),
        "url": lambda: _fill(
            d,
            d.pick(c.split.url_patterns),
            {"handle": _handle(d, _person(c, ref)), "tld": c.split.tlds[c.locale]},
        ),
        "mrn": lambda: d.mask(d.pick(f.medical_record_number)),
        "account": lambda: d.mask(d.pick(f.account_number)),
        "plan_id": lambda: _fill(d, d.pick(f.health_plan_id), {"mbi": v.mbi(d)}),
        "license": lambda: _fill(d, d.pick(f.license_number), {"dea": v.dea_number(d)}),
        "vin": lambda: v.vin(d),
        "plate": lambda: d.mask(d.pick(f.vehicle_plate)),
        "imei": lambda: v.imei(d),
        "mac": lambda: v.mac(d),
        "serial": lambda: d.mask(d.pick(f.device_serial)),
        "biometric": lambda: d.mask(d.pick(f.biometric_id)),
        "photo": lambda: _photo(c, ref),
        "old_age": lambda: str(d.between(90, 106)),
        "age": lambda: str(d.between(18, 89)),
        "bp": lambda: f"{d.between(95, 185)}/{d.between(50, 110)}",
    }
    if kind in fill:
        return fill[kind]()
    pattern = d.pick(f.distractors[kind])
    return d.mask(pattern) if any(ch in pattern for ch in "#@") else pattern


def _photo(c: _Context, ref: str | None) -> str:
    d = c.d
    pattern = d.pick(formats().photo_file)
    fields = _date_fields(_recent(d), _moment(d))
    if "{given}" in pattern or "{surname}" in pattern:
        p = _person(c, ref)
        fields |= {"given": ascii_slug(p.given), "surname": ascii_slug(p.surname)}
    return _fill(d, pattern, fields)


def _check(doc: Doc) -> Doc:
    """Every label's offsets hold its text, labels do not overlap and carry no edge space."""
    last = 0
    for lab in doc.labels:
        if doc.text[lab.start : lab.end] != lab.text:
            raise AssertionError(f"{doc.template}: label {lab.kind} does not match its offsets")
        if lab.start < last:
            raise AssertionError(f"{doc.template}: labels overlap")
        if not lab.text or lab.text != lab.text.strip():
            raise AssertionError(f"{doc.template}: label {lab.kind} is empty or padded")
        last = lab.end
    return doc


def render(template: Template, c: _Context) -> Doc:
    parts: list[str] = []
    labels: list[Label] = []
    pos = 0
    for literal, kind, ref in template.pieces:
        parts.append(literal)
        pos += len(literal)
        if kind is None:
            continue
        if kind == "full" and c.split.single_names and c.d.chance(c.split.single_names):
            # one name alone where the template writes it whole: more contexts for it
            kind = "given" if c.d.chance(0.5) else "surname"
        value = _value(c, kind, ref)
        entity = SLOTS[kind]
        if entity is not None:
            labels.append(Label(pos, pos + len(value), entity, kind, value))
        parts.append(value)
        pos += len(value)
    return _check(
        Doc("".join(parts), tuple(labels), c.split.name, template.family, template.id, c.locale)
    )


def _places(split: Split, seed: int) -> dict[str, Any]:
    if split.place_source == "faker":
        return {loc: FakerPlaces(loc, seed * 100 + i) for i, loc in enumerate(split.locales)}
    return {
        loc: MimesisPlaces(loc, split.datasets[loc], split.address_layouts[loc])
        for loc in split.locales
    }


def generate(split: str, n: int, seed: int = DEFAULT_SEED) -> list[Doc]:
    """``n`` labeled texts of ``split``: family, template and locale drawn uniformly per
    text. The same split, ``n`` and seed give the same texts."""
    s = load_split(split)
    d = Draw(np.random.default_rng([seed, SPLITS.index(split)]))
    places = _places(s, seed)
    pools = name_pools(s)
    families = s.families
    by_family = {fam: s.by_family(fam) for fam in families}
    docs = []
    for _ in range(n):
        template = d.pick(by_family[d.pick(families)])
        locale = d.pick(s.locales)
        doc = render(template, _Context(d, s, locale, places[locale], pools))
        if s.lowercase_chats and doc.family == "chat" and d.chance(s.lowercase_chats):
            doc = _lower_case(doc)
        docs.append(doc)
    return docs


#: What a chat typed in lower case writes in lower case too; codes and numbers keep their case.
_LOWERED = frozenset({"PERSON", "LOCATION", "DATE_TIME"})


def _lower_case(doc: Doc) -> Doc:
    """The text in lower case but for its codes (an IBAN, a VIN keep their capitals), where
    lower-casing keeps every offset."""
    kept = [(lab.start, lab.end) for lab in doc.labels if lab.entity not in _LOWERED]
    parts, pos = [], 0
    for start, end in kept:
        parts += [doc.text[pos:start].lower(), doc.text[start:end]]
        pos = end
    text = "".join(parts) + doc.text[pos:].lower()
    if len(text) != len(doc.text):
        return doc
    labels = tuple(
        Label(lab.start, lab.end, lab.entity, lab.kind, text[lab.start : lab.end])
        for lab in doc.labels
    )
    return _check(Doc(text, labels, doc.split, doc.family, doc.template, doc.locale))
