"""Surrogates: realistic fake values chosen by a keyed hash of the original.

The surrogate of a value is picked from value pools with HMAC-SHA256 under the dataset's
``surrogate`` data key, over ``normalize_text(value)`` (NFKC, casefold, whitespace trimmed
and collapsed). So ``John  Smith`` and ``john smith`` get the same fake name in every column,
table and free-text note that uses the same key, entity and locale. A partial mention
(``Smith`` alone) is a different original and gets its own surrogate.

Pools are built once per process and (locale, kind) from Faker's locale data, sorted, or from
a Faker seeded with a fixed seed; nothing calls Faker per value. Pools combine for a large
space: PERSON is first × last name (e.g. 690 × 1,000 for en_US); EMAIL_ADDRESS is ASCII first
× last × 00-99 × three reserved example domains (RFC 2606, never a real mailbox); ADDRESS
is street × city; PHONE_NUMBER is a Faker number whose digits after the fourth are
redrawn from the hash; DATE_TIME is a day between 1940-01-01 and 2015-12-31.

A surrogate never repeats a word of its own original. Pools hold real names, so a keyed
pick can land on one of the original's words (``Lucas Davidson`` → ``April Lucas``), which
would leave part of the name in the output. Where a picked name or city shares a word with
the original (case-insensitive), the next pool entry is taken until none does. The rule
depends on the original alone, so the same original still gets the same surrogate
everywhere; it re-picks about one value in three hundred for en_US names.

Collisions: different originals can share a surrogate. With a space of N values, m distinct
originals share at least one surrogate with probability about 1 - exp(-m²/2N) (for
en_US PERSON, N = 690,000: ~50 % at 980 people, ~100 % at 10,000). That is harmless for
realism and intended for privacy: a surrogate is not reversible and is not a join key; use
``tokenize`` for joins. A Faker upgrade can change the pools, hence every surrogate: Faker is
pinned in uv.lock.

Entities without a dedicated pool (GENERIC, and any unknown entity name passed to
``surrogate_strings`` from free-text scrubbing) get a format-preserving keyed token of the
exact value: same length, digits stay digits, letters stay letters (case kept).
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from functools import cache
from typing import ClassVar, get_args

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from veilflow.policy.operators import SurrogateConfig, SurrogateEntity, SurrogateLocale
from veilflow.transform.base import STRING, ChunkContext, Operator
from veilflow.transform.keys import DataKey
from veilflow.transform.operators.tokenize import (
    as_large_string,
    hmac_sha256,
    normalize_array,
    preserve_tokens,
    strings_from_buffers,
)

ENTITIES: tuple[str, ...] = get_args(SurrogateEntity)
LOCALES: tuple[str, ...] = get_args(SurrogateLocale)

#: "00" to "99", the number an e-mail surrogate's local part ends with.
_TWO_DIGITS = pa.array([f"{i:02d}" for i in range(100)], type=pa.large_string())
#: Fixed seed of the Faker instances that build pools (pools must not change between runs).
POOL_SEED = 20261127
#: Size of the pools drawn from a seeded Faker (phone numbers, streets, cities).
POOL_SIZE = 2000
EMAIL_DOMAINS = ("example.com", "example.net", "example.org")
#: DATE_TIME surrogates fall in [1940-01-01, 2015-12-31].
_DATE_FIRST = int(np.datetime64("1940-01-01", "D").astype(np.int64))
_DATE_SPAN = int(np.datetime64("2016-01-01", "D").astype(np.int64)) - _DATE_FIRST
#: PHONE_NUMBER: digits from this position on are redrawn from the hash (up to 12 of them).
_PHONE_KEEP_DIGITS = 4
_PHONE_REDRAWN = 12


def _faker(locale: str) -> object:
    from faker import Faker

    fake = Faker(locale)
    fake.seed_instance(POOL_SEED)
    return fake


def _person_provider(locale: str) -> object:
    fake = _faker(locale)
    for provider in fake.providers:  # type: ignore[attr-defined]
        if type(provider).__module__.startswith("faker.providers.person"):
            return provider
    raise LookupError(f"Faker has no person provider for locale {locale}")  # pragma: no cover


def _ascii_word(text: str) -> str:
    folded = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return "".join(c for c in folded.lower() if c.isalnum())


@cache
def pool(locale: str, kind: str) -> pa.Array:
    """The value pool of one (locale, kind), built once per process. Kinds: ``first``,
    ``last``, ``first_ascii``, ``last_ascii``, ``phone``, ``street``, ``city``."""
    values: list[str]
    if kind in ("first", "last", "first_ascii", "last_ascii"):
        provider = _person_provider(locale)
        names = getattr(provider, "first_names" if kind.startswith("first") else "last_names")
        words = {str(n) for n in names}
        if kind.endswith("_ascii"):
            words = {_ascii_word(n) for n in words} - {""}
        values = sorted(words)
    elif kind in ("phone", "street", "city"):
        fake = _faker(locale)
        make = getattr(
            fake, {"phone": "phone_number", "street": "street_address", "city": "city"}[kind]
        )
        # A fixed number of draws, de-duplicated and sorted: the pool depends only on the
        # seed and the locale data.
        values = sorted({make() for _ in range(POOL_SIZE)})
    else:
        raise KeyError(kind)
    return pa.array(values, type=pa.large_string())


def _pick(locale: str, kind: str, index: np.ndarray) -> pa.Array:
    p = pool(locale, kind)
    return pc.take(p, pa.array(index % np.uint64(len(p))))


#: What a word is when a surrogate is compared with its original: a run of letters.
_NOT_LETTERS = r"[^\p{L}]+"


def _words(casefolded: pa.Array) -> pa.ListArray:
    """Each value's words (runs of letters; empty strings where none) of values already
    casefolded by ``normalize_array``."""
    return pc.split_pattern_regex(casefolded, _NOT_LETTERS)


@cache
def _pool_words(locale: str, kind: str) -> tuple[pa.Array, np.ndarray]:
    """The distinct words of a pool, and per pool entry the indices of its words in that
    list (-1 padded): most entries are one word, some are two ("Klaus Peter", "Lake Anna")."""
    # Casefolded as originals are (``normalize_array``), so "Strauß" meets "strauss".
    per_entry = _words(normalize_array(pool(locale, kind))).to_pylist()
    vocabulary = sorted({w for ws in per_entry for w in ws if w})
    position = {w: i for i, w in enumerate(vocabulary)}
    width = max(1, max(len(ws) for ws in per_entry))
    ids = np.full((len(per_entry), width), -1, dtype=np.int64)
    for i, ws in enumerate(per_entry):
        for j, w in enumerate(w for w in ws if w):
            ids[i, j] = position[w]
    return pa.array(vocabulary, type=pa.large_string()), ids


def _pick_avoiding(
    locale: str, kind: str, index: np.ndarray, original_words: pa.ListArray
) -> pa.Array:
    """``_pick``, except that an entry sharing a word with the row's original is passed over
    for the next one, vectorized over the clashing rows only. A row moves through the pool
    at most once, so the loop ends even for an original made of every word in it."""
    vocabulary, entry_words = _pool_words(locale, kind)
    size = len(entry_words)
    pick = (index % np.uint64(size)).astype(np.int64)
    flat = pc.list_flatten(original_words)
    owner = np.asarray(pc.list_parent_indices(original_words), dtype=np.int64)
    ids = pc.index_in(flat, value_set=vocabulary)  # null: in no pool entry, cannot clash
    owner = owner[np.asarray(ids.is_valid(), dtype=bool)]
    word = np.asarray(ids.drop_null(), dtype=np.int64)
    clash = np.zeros(len(pick), dtype=bool)
    for _ in range(size):  # every entry tried at most once
        if not len(owner):
            break
        hit = (entry_words[pick[owner]] == word[:, None]).any(axis=1)
        if not hit.any():
            break
        clash[:] = False
        clash[owner[hit]] = True
        clashing = np.flatnonzero(clash)
        pick[clashing] = (pick[clashing] + 1) % size
        still = clash[owner]
        owner, word = owner[still], word[still]
    return pc.take(pool(locale, kind), pa.array(pick))


def _join(*parts: pa.Array | str) -> pa.Array:
    """Concatenate arrays and literal strings row by row."""
    large = [pa.scalar(p, pa.large_string()) if isinstance(p, str) else p for p in parts]
    return pc.binary_join_element_wise(*large, pa.scalar("", pa.large_string()))


@cache
def _phone_layout(locale: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The phone pool as a padded byte matrix, its lengths, and per entry the byte positions
    of the digits to redraw (from the ``_PHONE_KEEP_DIGITS``-th digit on, -1 padded)."""
    phones = [p.encode() for p in pool(locale, "phone").to_pylist()]
    width = max(len(p) for p in phones)
    matrix = np.zeros((len(phones), width), dtype=np.uint8)
    positions = np.full((len(phones), _PHONE_REDRAWN), -1, dtype=np.int64)
    for i, p in enumerate(phones):
        matrix[i, : len(p)] = np.frombuffer(p, dtype=np.uint8)
        digits = [j for j, b in enumerate(p) if 0x30 <= b <= 0x39][_PHONE_KEEP_DIGITS:]
        positions[i, : len(digits[:_PHONE_REDRAWN])] = digits[:_PHONE_REDRAWN]
    lengths = np.array([len(p) for p in phones], dtype=np.int64)
    return matrix, lengths, positions


def _phones(locale: str, index: np.ndarray, words: np.ndarray) -> pa.Array:
    """Pool entries picked by ``index`` with their later digits redrawn as ``word % 10``."""
    matrix, lengths, positions = _phone_layout(locale)
    pick = (index % np.uint64(len(matrix))).astype(np.int64)
    out = matrix[pick]
    rows = np.arange(len(pick))
    for k in range(_PHONE_REDRAWN):
        column = positions[pick, k]
        ok = column >= 0
        out[rows[ok], column[ok]] = (0x30 + words[ok, k] % 10).astype(np.uint8)
    size = lengths[pick]
    offsets = np.zeros(len(pick) + 1, dtype=np.int64)
    np.cumsum(size, out=offsets[1:])
    data = out[np.arange(matrix.shape[1]) < size[:, None]]
    return strings_from_buffers(data, offsets, np.ones(len(pick), dtype=bool))


def _surrogates(entity: str, locale: str, digests: np.ndarray, originals: pa.Array) -> pa.Array:
    """Surrogates for the dense (non-NULL) rows whose HMAC digests are ``digests``; name and
    city parts never repeat a word of the row's (normalized) original."""
    w = digests.view("<u8").reshape(-1, 4)  # four independent 64-bit indices per value
    words: list[pa.ListArray] = []  # split once, and only for entities that pick names

    def pick(kind: str, index: np.ndarray) -> pa.Array:
        if not words:
            words.append(_words(originals))
        return _pick_avoiding(locale, kind, index, words[0])

    if entity == "PERSON":
        return _join(pick("first", w[:, 0]), " ", pick("last", w[:, 1]))
    if entity == "FIRST_NAME":
        return pick("first", w[:, 0])
    if entity == "LAST_NAME":
        return pick("last", w[:, 1])
    if entity == "EMAIL_ADDRESS":
        number = pc.take(_TWO_DIGITS, pa.array(w[:, 2] % np.uint64(100)))
        domains = pa.array(list(EMAIL_DOMAINS), type=pa.large_string())
        domain = pc.take(domains, pa.array(w[:, 3] % np.uint64(len(EMAIL_DOMAINS))))
        return _join(
            pick("first_ascii", w[:, 0]),
            ".",
            pick("last_ascii", w[:, 1]),
            number,
            "@",
            domain,
        )
    if entity == "PHONE_NUMBER":
        return _phones(locale, w[:, 0], digests[:, 8:].view(">u2").reshape(-1, 12))
    if entity == "ADDRESS":
        return _join(_pick(locale, "street", w[:, 0]), ", ", pick("city", w[:, 1]))
    if entity in ("LOCATION", "CITY"):
        return pick("city", w[:, 1])
    if entity == "DATE_TIME":
        days = (_DATE_FIRST + (w[:, 2] % np.uint64(_DATE_SPAN)).astype(np.int64)).astype(np.int32)
        return pc.cast(pc.cast(pa.array(days), pa.date32()), pa.large_string())
    raise KeyError(entity)  # pragma: no cover


def surrogate_array(
    values: pd.Series | pa.Array | pa.ChunkedArray, entity: str, key: DataKey, locale: str = "en_US"
) -> pa.LargeStringArray:
    """Surrogates of a whole column; NULL stays NULL. ``entity`` outside ``ENTITIES`` (e.g.
    ``US_SSN`` from free text) gets the GENERIC format-preserving surrogate."""
    if locale not in LOCALES:
        raise ValueError(f"unsupported surrogate locale {locale!r}; one of {', '.join(LOCALES)}")
    arr = as_large_string(values)
    valid = np.asarray(arr.is_valid(), dtype=bool)
    present = arr.drop_null()
    if entity not in ENTITIES or entity == "GENERIC":
        messages = pc.cast(present, pa.large_binary()).to_pylist()
        data, dense_offsets, _ = preserve_tokens(key.material, messages)
        dense = strings_from_buffers(data, dense_offsets, np.ones(len(messages), dtype=bool))
    else:
        normalized = normalize_array(present)
        messages = pc.cast(normalized, pa.large_binary()).to_pylist()
        dense = _surrogates(entity, locale, hmac_sha256(key.material, messages), normalized)
    if valid.all():
        return dense.cast(pa.large_string())
    # Scatter the dense results back to their rows: a NULL index takes NULL.
    positions = pa.array(np.cumsum(valid) - 1, mask=~valid)
    return pc.take(dense, positions).cast(pa.large_string())


def surrogate_strings(
    values: Sequence[str | None], entity: str, key: DataKey, locale: str = "en_US"
) -> list[str | None]:
    """Surrogates of a plain list of strings (free-text scrubbing calls this per entity
    type); the same as the ``surrogate`` column operator for the same key, entity, locale."""
    out = surrogate_array(pa.array(values, type=pa.large_string()), entity, key, locale)
    return out.to_pylist()  # type: ignore[no-any-return]


class Surrogate(Operator[SurrogateConfig]):
    """Realistic fake values, the same fake for the same (normalized) original.

    YAML: ``{action: surrogate, entity: PERSON}``, optionally ``locale: de_DE``. Entities:
    PERSON, FIRST_NAME, LAST_NAME, EMAIL_ADDRESS, PHONE_NUMBER, LOCATION, ADDRESS, CITY,
    DATE_TIME, GENERIC (format-preserving). Locales: en_US (default), en_GB, de_DE, fr_FR,
    es_ES, it_IT, nl_NL. Not a join key: distinct originals may share a surrogate (see the
    module docstring for the birthday bound)."""

    name: ClassVar[str] = "surrogate"
    Config = SurrogateConfig
    key_purpose = "surrogate"
    gdpr = "pseudonymous"
    gdpr_reason = "keyed deterministic choice of a fake value; linkable by whoever holds the key"
    hides_raw = False  # a pool may contain the original (a real first name maps to another)

    def apply(self, values: pd.Series, chunk: ChunkContext) -> pd.Series:
        key = self.key
        assert key is not None
        out = surrogate_array(values, self.config.entity, key, self.config.locale)
        return pd.Series(pd.array(out, dtype=STRING), index=values.index)
