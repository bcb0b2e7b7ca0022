"""FF1 against an independent implementation (libffx, module ``ffx``) on random inputs, and
its properties under hypothesis: round-trip, format, determinism, distinctness, domain."""

from __future__ import annotations

import string

import numpy as np
import pytest
from ffx import FF1 as ReferenceFF1  # type: ignore[import-untyped]
from hypothesis import given, settings
from hypothesis import strategies as st

from veilflow.errors import TransformError
from veilflow.transform import ff1

ALPHABETS = {
    "radix10": string.digits,
    "radix16": string.digits + "abcdef",
    "radix26": string.ascii_lowercase,
    "radix36": string.digits + string.ascii_lowercase,
    # Not in code-point order, with punctuation: numeral order is the listed order.
    "custom7": "XA#7q-!",
    # Non-ASCII characters take the UTF-32 path.
    "greek24": "αβγδεζηθικλμνξοπρστυφχψω",
}


def _random_values(
    rng: np.random.Generator, alphabet: str, lengths: list[int], per_length: int
) -> list[str]:
    return [
        "".join(alphabet[i] for i in rng.integers(0, len(alphabet), n))
        for n in lengths
        for _ in range(per_length)
    ]


@pytest.mark.parametrize("name", list(ALPHABETS))
def test_differential_against_libffx(name: str) -> None:
    """Thousands of random values per radix, lengths 6..40 and 200, AES-128/192/256, tweaks
    of several lengths (Q of one and several blocks), compared value by value."""
    alphabet = ALPHABETS[name]
    rng = np.random.default_rng(sum(map(ord, name)))
    lengths = [*range(max(6, ff1.min_length(len(alphabet))), 41), 200]
    checked = 0
    for key_len, tweak_len in ((16, 0), (24, 11), (32, 21)):
        key = rng.bytes(key_len)
        tweak = rng.bytes(tweak_len)
        reference = ReferenceFF1(key, alphabet=alphabet)
        values = _random_values(rng, alphabet, lengths, 12)
        expected = [reference.encrypt(v, tweak=tweak) for v in values]
        assert ff1.encrypt(key, tweak, values, alphabet) == expected
        assert ff1.decrypt(key, tweak, expected, alphabet) == values
        checked += len(values)
    assert checked >= 1000


def test_differential_row_tweaks_both_paths() -> None:
    """One tweak per value (a context column): 16-digit values take the uint64 path,
    40-digit values the Python-integer path; both match libffx value by value."""
    rng = np.random.default_rng(7)
    key = rng.bytes(32)
    reference = ReferenceFF1(key, radix=10)
    cipher = ff1.FF1(key)
    for n in (16, 40):
        x = rng.integers(0, 10, (500, n))
        tweaks = rng.integers(0, 256, (500, 16), dtype=np.uint8)
        enc = cipher.encrypt_numerals(x, 10, tweaks, batch_rows=128)
        expected = [
            reference.encrypt("".join(map(str, row)), tweak=bytes(t))
            for row, t in zip(x, tweaks, strict=True)
        ]
        assert ["".join(map(str, row)) for row in enc] == expected
        assert (cipher.decrypt_numerals(enc, 10, tweaks) == x).all()


@pytest.mark.parametrize(
    "radix,n", [(10, 6), (10, 16), (10, 33), (36, 10), (36, 11), (2, 20), (65536, 2), (1000, 13)]
)
def test_uint64_and_wide_paths_agree(radix: int, n: int) -> None:
    """Across the 2**56 boundary the two arithmetic paths give identical ciphertexts."""
    rng = np.random.default_rng(radix * 100 + n)
    x = rng.integers(0, radix, (300, n))
    cipher = ff1.FF1(rng.bytes(16))
    fast = cipher.encrypt_numerals(x, radix, b"tw")
    wide = cipher.encrypt_numerals(x, radix, b"tw", wide=True)
    assert (fast == wide).all()
    assert (cipher.decrypt_numerals(fast, radix, b"tw") == x).all()


def test_radix_65536_matches_libffx() -> None:
    """The largest radix FF1 allows: numerals U+10000..U+1FFFF, lengths 2 and up."""
    alphabet = "".join(chr(0x10000 + i) for i in range(1 << 16))
    rng = np.random.default_rng(3)
    key = rng.bytes(16)
    values = _random_values(rng, alphabet, [2, 3, 9], 5)
    expected = [ReferenceFF1(key, alphabet=alphabet).encrypt(v) for v in values]
    assert ff1.encrypt(key, b"", values, alphabet) == expected


def test_mixed_lengths_keep_their_order() -> None:
    rng = np.random.default_rng(11)
    key = rng.bytes(16)
    values = _random_values(rng, string.digits, [6, 19, 7, 40, 6], 3)
    rng.shuffle(values)
    reference = ReferenceFF1(key, radix=10)
    assert ff1.encrypt(key, b"t", values, string.digits) == [
        reference.encrypt(v, tweak=b"t") for v in values
    ]


# -- properties --------------------------------------------------------------------------

_KEYS = st.sampled_from([16, 24, 32]).flatmap(lambda n: st.binary(min_size=n, max_size=n))


@st.composite
def _batch(draw: st.DrawFn) -> tuple[str, list[str]]:
    alphabet = draw(st.sampled_from(list(ALPHABETS.values())))
    lo = max(2, ff1.min_length(len(alphabet)))
    text = st.text(alphabet=alphabet, min_size=lo, max_size=lo + 30)
    return alphabet, draw(st.lists(text, min_size=1, max_size=30))


@settings(max_examples=60, deadline=None)
@given(key=_KEYS, tweak=st.binary(max_size=40), batch=_batch())
def test_round_trip_format_determinism(
    key: bytes, tweak: bytes, batch: tuple[str, list[str]]
) -> None:
    alphabet, values = batch
    enc = ff1.encrypt(key, tweak, values, alphabet)
    assert ff1.decrypt(key, tweak, enc, alphabet) == values
    assert [len(e) for e in enc] == [len(v) for v in values]
    assert all(set(e) <= set(alphabet) for e in enc)
    assert ff1.encrypt(key, tweak, values, alphabet) == enc
    # Each value alone gives what it gives in the batch (no cross-talk between rows).
    assert [ff1.encrypt(key, tweak, [v], alphabet)[0] for v in values[:3]] == enc[:3]


@settings(max_examples=30, deadline=None)
@given(
    key=_KEYS,
    values=st.sets(
        st.text(alphabet=string.digits, min_size=6, max_size=12), min_size=2, max_size=60
    ),
)
def test_distinct_stays_distinct(key: bytes, values: set[str]) -> None:
    listed = sorted(values)
    assert len(set(ff1.encrypt(key, b"", listed, string.digits))) == len(listed)


@settings(max_examples=30, deadline=None)
@given(key=_KEYS, value=st.text(alphabet=string.digits, min_size=6, max_size=20))
def test_tweak_and_key_matter(key: bytes, value: str) -> None:
    base = ff1.encrypt(key, b"a", [value] * 1, string.digits)[0]
    other_key = bytes([key[0] ^ 1]) + key[1:]
    # Different tweaks / keys give different permutations; a 6-digit collision has
    # probability 1e-6 per example, so compare a few values at once.
    values = [value, value[::-1], "0" * len(value), "9" * len(value)]
    assert ff1.encrypt(key, b"a", values, string.digits) != ff1.encrypt(
        key, b"b", values, string.digits
    )
    assert ff1.encrypt(key, b"a", values, string.digits) != ff1.encrypt(
        other_key, b"a", values, string.digits
    )
    assert len(base) == len(value)


# -- domain ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "alphabet,short",
    [(string.digits, "12345"), (string.ascii_lowercase, "abcd"), ("01", "0101010101010101011")],
)
def test_below_minimum_domain_is_refused(alphabet: str, short: str) -> None:
    with pytest.raises(ff1.FF1DomainError) as err:
        ff1.encrypt(bytes(16), b"", [short], alphabet)
    assert short not in str(err.value)
    assert "1,000,000" in str(err.value)
    assert isinstance(err.value, TransformError) and isinstance(err.value, ValueError)
    # One numeral more reaches the minimum.
    ff1.encrypt(bytes(16), b"", [short + alphabet[0]], alphabet)


def test_min_length() -> None:
    assert ff1.min_length(10) == 6
    assert ff1.min_length(36) == 4
    assert ff1.min_length(2) == 20
    assert ff1.min_length(1000) == 2
    assert ff1.min_length(65536) == 2


@pytest.mark.parametrize("alphabet", ["a", "", "aa"])
def test_bad_alphabets(alphabet: str) -> None:
    with pytest.raises(ff1.FF1DomainError):
        ff1.encrypt(bytes(16), b"", ["aaaaaaaa"], alphabet)


def test_radix_limits() -> None:
    with pytest.raises(ff1.FF1DomainError, match="2\\*\\*16"):
        ff1.check_radix(65537)
    with pytest.raises(ff1.FF1DomainError):
        ff1.FF1(bytes(16)).encrypt_numerals(np.zeros((1, 8), dtype=int), 1)
    with pytest.raises(ff1.FF1DomainError, match="shorter than 2\\*\\*32"):
        ff1.check_domain(10, 1 << 32)


def test_characters_outside_the_alphabet_name_the_position_not_the_value() -> None:
    with pytest.raises(ff1.FF1DomainError) as err:
        ff1.encrypt(bytes(16), b"", ["123456", "12345x"], string.digits)
    assert "#1" in str(err.value) and "12345x" not in str(err.value)


def test_empty_batch() -> None:
    assert ff1.encrypt(bytes(16), b"", [], string.digits) == []
    assert ff1.FF1(bytes(16)).encrypt_numerals(np.zeros((0, 8), dtype=int), 10).shape == (0, 8)
    with pytest.raises(ff1.FF1DomainError):
        ff1.encrypt(bytes(16), b"", [""], string.digits)


def test_key_lengths() -> None:
    with pytest.raises(ff1.FF1DomainError):
        ff1.FF1(bytes(20))
    assert "key hidden" in repr(ff1.FF1(bytes(32)))
