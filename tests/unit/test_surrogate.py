"""Surrogates: consistent per normalized original, drawn from Faker's locale data, keyed."""

from __future__ import annotations

import datetime as dt
import json
import re
import subprocess
import sys
from collections.abc import Sequence

import pandas as pd
import pytest
from faker import Faker
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from veilflow.transform.base import STRING, ChunkContext, ColumnContext
from veilflow.transform.keys import DataKey, LocalKeyProvider
from veilflow.transform.operators.surrogate import (
    EMAIL_DOMAINS,
    ENTITIES,
    Surrogate,
    SurrogateConfig,
    _pick,
    pool,
    surrogate_strings,
)
from veilflow.transform.operators.tokenize import hmac_sha256

PROVIDER = LocalKeyProvider(b"s" * 32)
KEY = PROVIDER.data_key("ds", "surrogate")
OTHER_KEY = LocalKeyProvider(b"t" * 32).data_key("ds", "surrogate")
NAMES = [f"Person Number {i}" for i in range(300)]


def apply(
    values: Sequence[str | None], entity: str, column: str = "c", locale: str = "en_US"
) -> list[str | None]:
    cfg = SurrogateConfig.model_validate({"entity": entity, "locale": locale})
    op = Surrogate(cfg, ColumnContext("ds", column, PROVIDER))
    out = op.apply(
        pd.Series(list(values), dtype=STRING),
        ChunkContext(pd.DataFrame({"k": range(len(values))}), "k"),
    )
    assert out.dtype == STRING and len(out) == len(values)
    return [None if pd.isna(v) else v for v in out]


def person_names(locale: str) -> tuple[set[str], set[str]]:
    fake = Faker(locale)
    provider = next(p for p in fake.providers if "person" in type(p).__module__)
    return set(provider.first_names), set(provider.last_names)


def test_same_person_same_surrogate_across_columns_spelling_and_free_text() -> None:
    a = apply(["John Smith", "Ann Lee", None], "PERSON", column="full_name")
    b = apply(["  JOHN\tsmith ", "ann lee"], "PERSON", column="contact")
    assert a[0] == b[0] and a[1] == b[1] and a[2] is None
    assert surrogate_strings(["john smith"], "PERSON", KEY) == [a[0]]
    assert a[0] != a[1]


def test_person_is_a_first_and_a_last_name_of_the_locale() -> None:
    for locale in ("en_US", "de_DE"):
        firsts, lasts = person_names(locale)
        for fake in apply(NAMES[:50], "PERSON", locale=locale):
            assert fake is not None
            # Some first names hold a space themselves ("Klaus Peter").
            splits = [i for i, c in enumerate(fake) if c == " "]
            assert any(fake[:i] in firsts and fake[i + 1 :] in lasts for i in splits)
        assert all(v in firsts for v in apply(NAMES[:20], "FIRST_NAME", locale=locale))
        assert all(v in lasts for v in apply(NAMES[:20], "LAST_NAME", locale=locale))


def test_keys_change_surrogates_and_spread_over_the_pool() -> None:
    mine = surrogate_strings(NAMES, "PERSON", KEY)
    theirs = surrogate_strings(NAMES, "PERSON", OTHER_KEY)
    assert sum(a == b for a, b in zip(mine, theirs, strict=True)) < 5
    # 300 originals in a space of ~690,000: expected shared surrogates ≈ 0.07.
    assert len(set(mine)) >= 297


def words(text: str | None) -> set[str]:
    """Casefolded runs of letters, as the surrogate rule compares them."""
    return set(re.findall(r"[^\W\d_]+", (text or "").casefold()))


def plain_pick(original: str, kind: str, key: DataKey = KEY, locale: str = "en_US") -> str:
    """The pool entry the keyed hash points at, before the no-shared-word rule."""
    digest = hmac_sha256(key.material, [" ".join(original.casefold().split()).encode()])
    index = digest.view("<u8").reshape(-1, 4)[:, 0 if kind.startswith("first") else 1]
    return str(_pick(locale, kind, index).to_pylist()[0])


def test_a_surrogate_never_repeats_a_word_of_its_original() -> None:
    """Under this key the hash points "Lucas Davidson" at the first name "Lucas": the
    surrogate takes the next pool entry instead, and stays the same on every call."""
    key = LocalKeyProvider((280).to_bytes(2, "big") * 16).data_key("customers", "surrogate")
    assert plain_pick("Lucas Davidson", "first", key) == "Lucas"
    fake = surrogate_strings(["Lucas Davidson", "lucas  DAVIDSON"], "PERSON", key)
    assert fake[0] == fake[1] and fake[0] is not None
    assert not words(fake[0]) & {"lucas", "davidson"}
    assert fake[0].split()[1] == plain_pick("Lucas Davidson", "last", key)  # untouched part


@pytest.mark.parametrize(
    ("entity", "kind"),
    [
        ("PERSON", "first"),
        ("FIRST_NAME", "first"),
        ("LAST_NAME", "last"),
        ("EMAIL_ADDRESS", "first_ascii"),
        ("CITY", "city"),
        ("ADDRESS", "city"),
    ],
)
def test_no_surrogate_shares_a_word_with_its_original(entity: str, kind: str) -> None:
    """Originals made of the pool's own words, so that plain keyed picks land on one of
    them often (the first assertion proves the test exercises the rule)."""
    firsts = pool("en_US", "first").to_pylist()
    lasts = pool("en_US", "last").to_pylist()
    cities = pool("en_US", "city").to_pylist()
    n = 6000
    if kind == "city":
        originals = [f"{cities[i % len(cities)]} {i}" for i in range(n)]
    elif entity == "EMAIL_ADDRESS":
        originals = [
            f"{firsts[i % len(firsts)].lower()}.{lasts[i % len(lasts)].lower()}{i}@mail.test"
            for i in range(n)
        ]
    else:
        originals = [f"{firsts[i % len(firsts)]} {lasts[(7 * i) % len(lasts)]}" for i in range(n)]
    plain = sum(bool(words(plain_pick(o, kind)) & words(o)) for o in originals)
    assert plain >= 3
    fakes = surrogate_strings(originals, entity, KEY)
    assert all(f is not None for f in fakes)
    shared = [o for o, f in zip(originals, fakes, strict=True) if words(f) & words(o)]
    if entity == "EMAIL_ADDRESS":  # the reserved domain's words are not name parts
        shared = [
            o
            for o, f in zip(originals, fakes, strict=True)
            if words(f.rpartition("@")[0]) & words(o)  # type: ignore[union-attr]
        ]
    if entity == "ADDRESS":  # street names are left as drawn; the city is the rule's
        shared = [
            o
            for o, f in zip(originals, fakes, strict=True)
            if words(f.rpartition(", ")[2]) & words(o)  # type: ignore[union-attr]
        ]
    assert shared == []


def test_no_shared_word_in_german_names_with_hyphens_and_sharp_s() -> None:
    """Words are compared casefolded on both sides: "Anna-Lena Geißler" shares "lena" with
    "Lena Roth" and "geissler" with "Jonas Geissler"."""
    firsts = [f for f in pool("de_DE", "first").to_pylist() if "-" in f]
    lasts = [name for name in pool("de_DE", "last").to_pylist() if "ß" in name or " " in name]
    originals = [f"{firsts[i % len(firsts)]} {lasts[i % len(lasts)]}" for i in range(4000)]
    plain = sum(
        bool(words(plain_pick(o, kind, locale="de_DE")) & words(o))
        for o in originals
        for kind in ("first", "last")
    )
    assert plain >= 3
    fakes = surrogate_strings(originals, "PERSON", KEY, "de_DE")
    assert [o for o, f in zip(originals, fakes, strict=True) if words(f) & words(o)] == []


def test_email_phone_address_location_date_shapes() -> None:
    emails = apply(NAMES[:40], "EMAIL_ADDRESS")
    pattern = re.compile(
        r"^[a-z0-9]+\.[a-z0-9]+\d\d@(" + "|".join(re.escape(d) for d in EMAIL_DOMAINS) + r")$"
    )
    assert all(e is not None and pattern.match(e) for e in emails)

    phones = apply(NAMES[:40], "PHONE_NUMBER")
    skeletons = {re.sub(r"\d", "#", p) for p in pool("en_US", "phone").to_pylist()}
    for p in phones:
        assert p is not None and re.sub(r"\d", "#", p) in skeletons
    assert len(set(phones)) == 40

    cities = set(pool("en_US", "city").to_pylist())
    assert all(c in cities for c in apply(NAMES[:20], "CITY"))
    assert apply(NAMES[:20], "LOCATION") == apply(NAMES[:20], "CITY")
    for address in apply(NAMES[:20], "ADDRESS"):
        assert address is not None
        street, _, city = address.rpartition(", ")
        assert street in set(pool("en_US", "street").to_pylist()) and city in cities

    for day in apply(NAMES[:50], "DATE_TIME"):
        assert day is not None
        assert dt.date(1940, 1, 1) <= dt.date.fromisoformat(day) <= dt.date(2015, 12, 31)


@settings(max_examples=150, deadline=None)
@given(st.lists(st.text(max_size=30), min_size=1, max_size=10))
def test_generic_and_unknown_entities_preserve_the_format(values: list[str]) -> None:
    generic = surrogate_strings(values, "GENERIC", KEY)
    assert surrogate_strings(values, "US_SSN", KEY) == generic
    for v, s in zip(values, generic, strict=True):
        assert s is not None and len(s) == len(v)
        for a, b in zip(v, s, strict=True):
            if a.isascii() and a.isdigit():
                assert b.isascii() and b.isdigit()
            elif a.isascii() and a.isalpha():
                assert b.isascii() and b.isalpha() and a.isupper() == b.isupper()
            else:
                assert a == b


def test_deterministic_across_processes() -> None:
    script = (
        "import json;from veilflow.transform.keys import LocalKeyProvider;"
        "from veilflow.transform.operators.surrogate import surrogate_strings;"
        "k=LocalKeyProvider(b's'*32).data_key('ds','surrogate');"
        "print(json.dumps([surrogate_strings(['Ann Lee','x@y.org'],e,k,'fr_FR')"
        " for e in ('PERSON','EMAIL_ADDRESS','PHONE_NUMBER','ADDRESS')]))"
    )
    here = [
        surrogate_strings(["Ann Lee", "x@y.org"], e, KEY, "fr_FR")
        for e in ("PERSON", "EMAIL_ADDRESS", "PHONE_NUMBER", "ADDRESS")
    ]
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=60
    )
    assert json.loads(out.stdout) == here


@pytest.mark.parametrize("entity", ENTITIES)
def test_every_entity_keeps_nulls_and_handles_empty_text(entity: str) -> None:
    out = apply([None, "", "Ann", None], entity)
    assert out[0] is None and out[3] is None and out[1] is not None and out[2] is not None


@pytest.mark.parametrize(
    "params",
    [
        {"entity": "PERSN"},
        {"entity": "PERSON", "locale": "xx_XX"},
        {},
        {"entity": "PERSON", "seed": 3},
    ],
)
def test_config_is_strict(params: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        SurrogateConfig.model_validate(params)


def test_unsupported_locale_in_free_text_call_is_refused() -> None:
    with pytest.raises(ValueError, match="locale"):
        surrogate_strings(["a"], "PERSON", KEY, "xx_XX")


@pytest.mark.parametrize("entity", ["PERSON", "PHONE_NUMBER", "GENERIC"])
def test_empty_and_all_null_chunks(entity: str) -> None:
    assert apply([], entity) == []
    assert apply([None, None], entity) == [None, None]
