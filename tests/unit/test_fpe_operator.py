"""The ``ff1`` operator: expected ciphertexts recomputed with libffx from the documented
tweak, layout rules (separators, keep_first/keep_last, Luhn, email), invalid values both ways,
NULLs, and decryption with what it can and cannot detect."""

from __future__ import annotations

import base64
import hashlib
import hmac
import string
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import pytest
from ffx import FF1 as ReferenceFF1  # type: ignore[import-untyped]
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from veilflow.errors import TransformError
from veilflow.transform.base import STRING, ChunkContext, ColumnContext
from veilflow.transform.keys import DataKey, LocalKeyProvider
from veilflow.transform.operators.fpe import FF1Config, FF1Encrypt

KEYS = LocalKeyProvider(bytes(range(32)))
DATASET = "customers"
ALNUM = string.digits + string.ascii_uppercase + string.ascii_lowercase


def make(column: str = "card", keys: LocalKeyProvider = KEYS, **cfg: Any) -> FF1Encrypt:
    return FF1Encrypt(FF1Config(**cfg), ColumnContext(DATASET, column, keys))


def chunk_of(
    values: Sequence[str | None],
    column: str = "card",
    index: list[int] | None = None,
    **extra: list[Any],
) -> tuple[pd.Series, ChunkContext]:
    frame = pd.DataFrame(
        {
            "id": [f"k{i}" for i in range(len(values))],
            column: pd.Series(list(values), dtype=STRING),
            **extra,
        }
    )
    if index is not None:
        frame.index = index
    return frame[column], ChunkContext(frame, "id")


def column_tweak(column: str = "card") -> bytes:
    return hashlib.sha256(b"veilflow-ff1\0" + DATASET.encode() + b"\0" + column.encode()).digest()[
        :8
    ]


def reference(alphabet: str = string.digits, keys: LocalKeyProvider = KEYS) -> ReferenceFF1:
    return ReferenceFF1(keys.data_key(DATASET, "ff1").material, alphabet=alphabet)


def luhn_ok(number: str) -> bool:
    digits = [int(c) for c in number if c.isdigit()][::-1]
    total = sum(d if i % 2 == 0 else (2 * d - 9 if d > 4 else 2 * d) for i, d in enumerate(digits))
    return total % 10 == 0


def with_check_digit(body: str) -> str:
    return next(body + c for c in string.digits if luhn_ok(body + c))


def token(value: str) -> str:
    key = KEYS.data_key(DATASET, "token")
    digest = hmac.digest(key.material, value.encode(), "sha256")[:16]
    return f"tok_v{key.version}_" + base64.b32encode(digest).decode().rstrip("=").lower()


# -- operator metadata and config --------------------------------------------------------


def test_operator_metadata() -> None:
    assert FF1Encrypt.name == "ff1"
    assert FF1Encrypt.gdpr == "pseudonymous"
    assert FF1Encrypt.key_purpose == "ff1"
    assert FF1Encrypt.lineage_subtype == "TRANSFORMATION"
    assert FF1Encrypt.masking is True
    assert "customers/ff1@v1" in make().describe()


@pytest.mark.parametrize(
    "cfg",
    [
        {"alphabet": "hex", "luhn": True},
        {"alphabet": "aab"},
        {"alphabet": "x"},
        {"luhn": True, "email": True},
        {"keep_last": -1},
        {"on_invalid": "skip"},
        {"unknown": 1},
    ],
)
def test_config_rejects(cfg: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        FF1Config(**cfg)


@pytest.mark.parametrize(
    "name,radix",
    [
        ("digits", 10),
        ("hex", 16),
        ("lower_alnum", 36),
        ("upper_alnum", 36),
        ("alnum", 62),
        ("XYZ", 3),
    ],
)
def test_named_and_custom_alphabets(name: str, radix: int) -> None:
    assert len(FF1Config(alphabet=name).characters) == radix


# -- expected ciphertexts ------------------------------------------------------------------


def test_separators_stay_and_digits_match_libffx() -> None:
    values, chunk = chunk_of(["4111-1111-1111-1111", "123-45-6789", "(555) 010-9999"])
    out = make().apply(values, chunk)
    ref = reference()
    for plain, enc in zip(values, out, strict=True):
        digits = "".join(c for c in plain if c.isdigit())
        expected_digits = iter(ref.encrypt(digits, tweak=column_tweak()))
        expected = "".join(next(expected_digits) if c.isdigit() else c for c in plain)
        assert enc == expected
    assert out[0][4] == "-" and out[1][3] == "-" and out[2][0] == "("


def test_keep_first_and_keep_last() -> None:
    values, chunk = chunk_of(["4111-1111-1111-1234"])
    out = make(keep_first=6, keep_last=4).apply(values, chunk)
    middle = reference().encrypt("111111", tweak=column_tweak())
    assert out[0] == "4111-11" + middle[:2] + "-" + middle[2:] + "-1234"


def test_column_and_dataset_set_the_tweak() -> None:
    values, chunk = chunk_of(["123456789"], column="ssn")
    a = make(column="ssn").apply(values, chunk)[0]
    assert a == reference().encrypt("123456789", tweak=column_tweak("ssn"))
    other, chunk2 = chunk_of(["123456789"], column="tax_id")
    assert make(column="tax_id").apply(other, chunk2)[0] != a


def test_luhn_output_valid_and_reversible() -> None:
    card = "4111 1111 1111 1111"
    values, chunk = chunk_of([card, "5500005555555559", "378282246310005"])
    op = make(keep_last=4, luhn=True)
    out = op.apply(values, chunk)
    assert all(luhn_ok(v) for v in out)
    # Independent reconstruction: 11 digits encrypted, the 12th chosen by the Luhn check.
    body = reference().encrypt("41111111111", tweak=column_tweak())
    digits = next(body + c + "1111" for c in string.digits if luhn_ok(body + c + "1111"))
    assert out[0] == f"{digits[:4]} {digits[4:8]} {digits[8:12]} {digits[12:]}"
    assert out[1].endswith("5559") and out[2].endswith("0005")
    assert list(op.decrypt_values(out, chunk)) == list(values)


def test_luhn_without_keep_last_recomputes_the_check_digit() -> None:
    values, chunk = chunk_of(["4111111111111111"])
    out = make(luhn=True).apply(values, chunk)[0]
    assert out[:15] == reference().encrypt("411111111111111", tweak=column_tweak())
    assert out == with_check_digit(out[:15])


def test_email_keeps_the_domain() -> None:
    values, chunk = chunk_of(["John.Doe@example.com", "ab.c+d@sub.example.org"], column="email")
    out = make(column="email", email=True, alphabet="alnum").apply(values, chunk)
    ref = reference(ALNUM)
    enc = ref.encrypt("JohnDoe", tweak=column_tweak("email"))
    assert out[0] == enc[:4] + "." + enc[4:] + "@example.com"
    assert out[1].endswith("@sub.example.org") and out[1][2] == "." and out[1][4] == "+"


def test_context_column_joins_the_tweak() -> None:
    values, chunk = chunk_of(["123456789"] * 4, ctx=["DE", "FR", "DE", None])
    out = make(context_column="ctx").apply(values, chunk)
    assert out[0] == out[2] and len({out[0], out[1], out[3]}) == 3
    prefix = b"veilflow-ff1\0" + DATASET.encode() + b"\0card\0"
    de = hashlib.sha256(prefix + b"\1DE").digest()[:16]
    null = hashlib.sha256(prefix + b"\0").digest()[:16]
    assert out[0] == reference().encrypt("123456789", tweak=de)
    assert out[3] == reference().encrypt("123456789", tweak=null)
    assert list(make(context_column="ctx").decrypt_values(out, chunk)) == ["123456789"] * 4


def test_missing_context_column_names_it() -> None:
    values, chunk = chunk_of(["123456789"])
    with pytest.raises(TransformError, match="'nope'"):
        make(context_column="nope").apply(values, chunk)


def test_non_ascii_alphabet_and_passthrough() -> None:
    greek = "αβγδεζηθικλμνξοπρστυφχψω"
    values, chunk = chunk_of(["αβγ–δεζ·ηθ", "ωωωω ωω"])
    out = make(alphabet=greek, separators=None).apply(values, chunk)
    enc = reference(greek).encrypt("αβγδεζηθ", tweak=column_tweak())
    assert out[0] == enc[:3] + "–" + enc[3:6] + "·" + enc[6:]
    assert list(make(alphabet=greek, separators=None).decrypt_values(out, chunk)) == list(values)


def test_many_rows_of_mixed_lengths_match_libffx() -> None:
    rng = np.random.default_rng(5)
    plain = ["".join(rng.choice(list(string.digits), int(n))) for n in rng.integers(6, 30, 400)]
    values, chunk = chunk_of(plain)
    out = make().apply(values, chunk)
    ref = reference()
    assert list(out) == [ref.encrypt(v, tweak=column_tweak()) for v in plain]


# -- NULLs and invalid values ---------------------------------------------------------------


def test_nulls_stay_null_and_index_is_kept() -> None:
    values, chunk = chunk_of([None, "123456", None, "654321"], index=[10, 11, 12, 13])
    out = make().apply(values, chunk)
    assert list(out.index) == [10, 11, 12, 13]
    assert out.isna().tolist() == [True, False, True, False]
    assert out.dtype == STRING
    assert make().apply(*chunk_of([None, None])).isna().all()


def test_invalid_values_become_tokens_and_are_counted() -> None:
    values, chunk = chunk_of(["12345", "12a456789", "123456", "4111111111111112"])
    out = make().apply(values, chunk)
    assert out[0] == token("12345") and out[1] == token("12a456789")
    assert out[2] != "123456" and len(out[2]) == 6
    assert chunk.counters["card"] == {
        "fallback_token": 2,
        "below_minimum_domain": 1,
        "invalid_characters": 1,
    }
    luhn_chunk = chunk_of(["4111111111111112"])
    assert make(luhn=True).apply(*luhn_chunk)[0] == token("4111111111111112")
    assert luhn_chunk[1].counters["card"]["luhn_invalid"] == 1


def test_email_fallback_keeps_domain() -> None:
    values, chunk = chunk_of(["bob@x.org", "no-at-sign", "Zoë.K@x.org"], column="email")
    out = make(column="email", email=True, alphabet="lower_alnum").apply(values, chunk)
    assert list(out) == [token("bob") + "@x.org", token("no-at-sign"), token("Zoë.K") + "@x.org"]
    assert chunk.counters["email"] == {
        "fallback_token": 3,
        "below_minimum_domain": 1,
        "no_at_sign": 1,
        "invalid_characters": 1,
    }


def test_on_invalid_fail_names_column_and_rows_not_keys_or_values() -> None:
    values, chunk = chunk_of(["123456789", "98765", "12x456789"])
    with pytest.raises(TransformError) as err:
        make(on_invalid="fail").apply(values, chunk)
    message = str(err.value)
    assert "'card'" in message and "chunk positions 2, 3" in message
    assert "k1" not in message and "k2" not in message  # row keys may be personal data too
    assert "98765" not in message and "12x456789" not in message
    assert chunk.counters["card"]["invalid"] == 2


def test_on_invalid_fail_names_rows_by_snapshot_ordinal() -> None:
    values = ["123456789"] * 3 + ["CANARY-VAL-7Q2X"] * 8
    frame = pd.DataFrame(
        {
            "id": [f"CANARY-KEY-{i}" for i in range(len(values))],
            "_vf_row": pd.Series([str(101 + i) for i in range(len(values))], dtype=STRING),
            "card": pd.Series(values, dtype=STRING),
        }
    )
    chunk = ChunkContext(frame, "id", row_column="_vf_row")
    with pytest.raises(TransformError) as err:
        make(on_invalid="fail").apply(frame["card"], chunk)
    message = str(err.value)
    assert "8 value(s)" in message
    assert "snapshot rows 104, 105, 106, 107, 108 and 3 more (numbered in key order)" in message
    assert "CANARY" not in message


def test_separators_are_configurable() -> None:
    values, chunk = chunk_of(["12#34#56#78"])
    assert make().apply(values, chunk)[0] == token("12#34#56#78")
    out = make(separators="#").apply(values, chunk)[0]
    assert out[2::3] == "###"


# -- decryption ------------------------------------------------------------------------------


def test_tampered_luhn_ciphertext_fails_loudly() -> None:
    values, chunk = chunk_of(["4111-1111-1111-1111", "5500-0055-5555-5559"])
    op = make(keep_last=4, luhn=True)
    out = op.apply(values, chunk)
    first = out[0]
    swapped = str((int(first[0]) + 1) % 10)
    tampered = pd.Series([swapped + first[1:], out[1]], dtype=STRING)
    with pytest.raises(TransformError) as err:
        op.decrypt_values(tampered, chunk)
    assert "chunk position 1" in str(err.value) and "luhn" in str(err.value)
    assert "k0" not in str(err.value) and first[1:] not in str(err.value)


def test_format_mismatch_fails_loudly_on_decrypt() -> None:
    values, chunk = chunk_of(["123456", "12-34", "abcdef"])
    with pytest.raises(TransformError) as err:
        make().decrypt_values(values, chunk)
    assert "chunk positions 2, 3" in str(err.value)
    assert "k1" not in str(err.value) and "k2" not in str(err.value)


def test_wrong_key_is_not_detectable() -> None:
    """FF1 is a permutation: another key decrypts to another well-formed value silently."""
    values, chunk = chunk_of(["123-45-6789"])
    out = make().apply(values, chunk)
    other = LocalKeyProvider(bytes(range(1, 33)))
    wrong = make(keys=other).decrypt_values(out, chunk)[0]
    assert wrong != "123-45-6789" and wrong[3] == "-" and len(wrong) == 11


def test_tokens_pass_through_decryption() -> None:
    values, chunk = chunk_of(["12345", "123456"])
    out = make().apply(values, chunk)
    back = make().decrypt_values(out, chunk)
    assert list(back) == [token("12345"), "123456"]
    assert chunk.counters["card"]["not_reversible"] == 1


# -- properties ------------------------------------------------------------------------------

_LAYOUT = st.lists(
    st.one_of(st.sampled_from(string.digits), st.sampled_from(" -./")), min_size=0, max_size=30
).map("".join)


@settings(max_examples=50, deadline=None)
@given(
    st.lists(st.one_of(st.none(), _LAYOUT), min_size=1, max_size=25),
    st.integers(0, 3),
    st.integers(0, 4),
)
def test_round_trip_and_layout(values: list[str | None], keep_first: int, keep_last: int) -> None:
    series, chunk = chunk_of(values)
    op = make(keep_first=keep_first, keep_last=keep_last)
    out = op.apply(series, chunk)
    back = op.decrypt_values(out, chunk)
    for plain, enc, dec in zip(values, out, back, strict=True):
        if plain is None:
            assert enc is pd.NA and dec is pd.NA
            continue
        n_digits = sum(c.isdigit() for c in plain)
        if n_digits - keep_first - keep_last < 6:
            assert enc == token(plain) and dec == enc
            continue
        assert dec == plain
        assert len(enc) == len(plain)
        assert [c for c in enc if not c.isdigit()] == [c for c in plain if not c.isdigit()]
        assert all(a == b for a, b in zip(enc, plain, strict=True) if not b.isdigit())
        clear = [i for i, c in enumerate(plain) if c.isdigit()]
        kept = clear[:keep_first] + (clear[len(clear) - keep_last :] if keep_last else [])
        assert all(enc[i] == plain[i] for i in kept)
    # Deterministic: a second run gives the same output.
    assert out.equals(op.apply(series, chunk))


@settings(max_examples=40, deadline=None)
@given(
    st.lists(
        st.text(alphabet=string.digits, min_size=15, max_size=15),
        min_size=1,
        max_size=20,
        unique=True,
    ),
    st.integers(0, 6),
)
def test_luhn_property(bodies: list[str], keep_last: int) -> None:
    cards = [with_check_digit(b) for b in bodies]
    series, chunk = chunk_of(cards)
    op = make(luhn=True, keep_last=keep_last)
    out = op.apply(series, chunk)
    assert all(luhn_ok(c) for c in out)
    assert len(set(out)) == len(cards)
    if keep_last:
        assert all(o[-keep_last:] == c[-keep_last:] for o, c in zip(out, cards, strict=True))
    assert list(op.decrypt_values(out, chunk)) == cards


@settings(max_examples=40, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.text(
                alphabet=string.ascii_lowercase + string.digits + "._", min_size=1, max_size=12
            ),
            st.from_regex(r"[a-z]{1,8}\.(com|org|de)", fullmatch=True),
        ),
        min_size=1,
        max_size=15,
    )
)
def test_email_domain_kept_property(parts: list[tuple[str, str]]) -> None:
    emails = [f"{local}@{domain}" for local, domain in parts]
    series, chunk = chunk_of(emails, column="email")
    op = make(column="email", email=True, alphabet="lower_alnum")
    out = op.apply(series, chunk)
    for (local, domain), enc in zip(parts, out, strict=True):
        assert enc.endswith("@" + domain)
        if sum(c not in "._" for c in local) >= 4:
            assert len(enc) == len(local) + 1 + len(domain)
    assert list(op.decrypt_values(out, chunk)) == [
        e if sum(c not in "._" for c in local) >= 4 else o
        for e, o, (local, _) in zip(emails, out, parts, strict=True)
    ]


@pytest.mark.parametrize(
    "cfg", [{}, {"keep_last": 4, "luhn": True}, {"keep_first": 2, "keep_last": 3}, {"luhn": True}]
)
def test_shared_pattern_and_ragged_paths_agree(cfg: dict[str, Any]) -> None:
    """Values sharing one layout go column-wise; one odd layout sends the whole slice down
    the per-character path. Both must give the same ciphertexts and decrypt alike."""
    rng = np.random.default_rng(9)
    cards = [with_check_digit("".join(rng.choice(list(string.digits), 15))) for _ in range(200)]
    dashed = [f"{c[:4]}-{c[4:8]}-{c[8:12]}-{c[12:]}" for c in cards]
    odd = with_check_digit("123456789012345")
    odd = " ".join(odd[i : i + 3] for i in range(0, 16, 3))
    op = make(**cfg)
    shared = op.apply(*chunk_of(dashed))
    series, chunk = chunk_of([*dashed, odd])
    ragged = op.apply(series, chunk)
    assert list(ragged[:200]) == list(shared)
    assert ragged[200] != odd and [c for c in ragged[200] if c == " "] == [" "] * 5
    assert list(op.decrypt_values(ragged, chunk)) == [*dashed, odd]
    assert list(op.decrypt_values(shared, chunk_of(dashed)[1])) == dashed


class _TwoVersions:
    """A key provider with versions 1 and 2 of the ``ff1`` key; version 2 is active."""

    def data_key(self, dataset: str, purpose: str, version: int | None = None) -> DataKey:
        v = 2 if version is None else version
        return DataKey(f"{dataset}/{purpose}", v, hashlib.sha256(f"{purpose}{v}".encode()).digest())


def test_decrypt_with_an_older_key_version() -> None:
    keys = _TwoVersions()
    _, chunk = chunk_of(["123-45-6789"])
    old = FF1Encrypt(FF1Config(), ColumnContext(DATASET, "card", keys))
    v1_key = keys.data_key(DATASET, "ff1", 1).material
    enc_v1 = pd.Series(
        [ReferenceFF1(v1_key, radix=10).encrypt("123456789", tweak=column_tweak())], dtype=STRING
    )
    formatted = enc_v1.str.slice(0, 3) + "-" + enc_v1.str.slice(3, 5) + "-" + enc_v1.str.slice(5)
    assert old.decrypt_values(formatted, chunk, key_version=1)[0] == "123-45-6789"
    assert old.decrypt_values(formatted, chunk)[0] != "123-45-6789"
    assert "ff1@v2" in old.describe()
