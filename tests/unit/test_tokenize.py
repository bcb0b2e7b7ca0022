"""Deterministic tokens: the HMAC primitive against RFC 4231, readable tokens against the
standard library, the format-preserving form against a plain per-character re-implementation
of its documented algorithm, joinability and determinism across processes."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import subprocess
import sys
from collections.abc import Sequence
from typing import Any

import pandas as pd
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from veilflow.transform.base import STRING, ChunkContext, ColumnContext
from veilflow.transform.keys import DataKey, LocalKeyProvider
from veilflow.transform.operators import tokenize as tokenize_module
from veilflow.transform.operators.tokenize import (
    Tokenize,
    TokenizeConfig,
    hmac_sha256,
    normalize_array,
    normalize_text,
    split_domain,
    tokenize_strings,
)

PROVIDER = LocalKeyProvider(b"m" * 32)
KEY = PROVIDER.data_key("ds", "token")
OTHER_KEY = LocalKeyProvider(b"n" * 32).data_key("ds", "token")


def apply(
    values: Sequence[str | None],
    column: str = "c",
    provider: LocalKeyProvider = PROVIDER,
    chunk: ChunkContext | None = None,
    **params: object,
) -> list[str | None]:
    op = Tokenize(TokenizeConfig.model_validate(params), ColumnContext("ds", column, provider))
    chunk = chunk or ChunkContext(pd.DataFrame({"k": range(len(values))}), "k")
    out = op.apply(pd.Series(list(values), dtype=STRING), chunk)
    assert out.dtype == STRING and len(out) == len(values)
    return [None if pd.isna(v) else v for v in out]


def reference_token(key: bytes, value: str, version: int = 1, prefix: str = "tok") -> str:
    digest = hmac.new(key, value.encode(), hashlib.sha256).digest()
    return f"{prefix}_v{version}_" + base64.b32encode(digest[:16]).decode().rstrip("=").lower()


def reference_preserve(key: bytes, value: str) -> str:
    """The documented format-preserving algorithm, one character at a time."""
    raw = value.encode()
    stream: list[int] = []
    for j in range((len(raw) + 15) // 16):
        block = hmac.new(key, b"fp" + j.to_bytes(4, "big") + raw, hashlib.sha256).digest()
        stream += [int.from_bytes(block[i : i + 2], "big") for i in range(0, 32, 2)]
    out, first = bytearray(), True
    for i, b in enumerate(raw):
        for lo, radix in ((0x30, 10), (0x41, 26), (0x61, 26)):
            if lo <= b < lo + radix:
                word = stream[i]
                shift = 1 + (word * (radix - 1) >> 16) if first else word * radix >> 16
                b, first = lo + (b - lo + shift) % radix, False
                break
        out.append(b)
    return out.decode()


# RFC 4231, test cases 1, 2 and 6 (HMAC-SHA-256).
@pytest.mark.parametrize(
    ("key", "data", "expected"),
    [
        (
            b"\x0b" * 20,
            b"Hi There",
            "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7",
        ),
        (
            b"Jefe",
            b"what do ya want for nothing?",
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843",
        ),
        (
            b"\xaa" * 131,
            b"Test Using Larger Than Block-Size Key - Hash Key First",
            "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54",
        ),
    ],
    ids=["rfc4231-1", "rfc4231-2", "rfc4231-6"],
)
def test_hmac_primitive_matches_rfc4231(key: bytes, data: bytes, expected: str) -> None:
    digests = hmac_sha256(key, [data, b"", data])
    assert digests.shape == (3, 32)
    assert digests[0].tobytes().hex() == expected == digests[2].tobytes().hex()
    assert digests[1].tobytes() == hmac.new(key, b"", hashlib.sha256).digest()


@settings(max_examples=200, deadline=None)
@given(st.lists(st.text(), max_size=20))
def test_readable_tokens_match_stdlib_hmac(values: list[str]) -> None:
    assert tokenize_strings(values, KEY) == [reference_token(KEY.material, v) for v in values]


def test_readable_token_shape_prefix_and_version() -> None:
    [tok] = tokenize_strings(
        ["alice"], DataKey("ds/token", 7, KEY.material), TokenizeConfig(prefix="cust")
    )
    assert tok == reference_token(KEY.material, "alice", version=7, prefix="cust")
    assert tok is not None and len(tok) == len("cust_v7_") + 26


def test_nulls_stay_null_and_empty_string_is_a_value() -> None:
    out = apply([None, "", "a", None])
    assert out[0] is None and out[3] is None
    assert out[1] == reference_token(KEY.material, "") and out[2] == reference_token(
        KEY.material, "a"
    )
    assert apply([None, None], format="preserve") == [None, None]


def test_joinable_across_columns_and_tables_with_the_same_key() -> None:
    orders = apply(["c-1", "c-2", "c-3"], column="customer_id")
    payments = apply(
        ["c-3", "c-1", None],
        column="payer",
        chunk=ChunkContext(pd.DataFrame({"pid": [10, 11, 12]}), "pid"),
    )
    assert payments[0] == orders[2] and payments[1] == orders[0]
    assert len(set(orders)) == 3
    other = apply(["c-1", "c-2", "c-3"], provider=LocalKeyProvider(b"n" * 32))
    assert not set(other) & set(orders)


def test_deterministic_across_processes() -> None:
    script = (
        "import json;from veilflow.transform.keys import LocalKeyProvider;"
        "from veilflow.transform.operators.tokenize import tokenize_strings, TokenizeConfig;"
        "k=LocalKeyProvider(b'm'*32).data_key('ds','token');"
        "print(json.dumps([tokenize_strings(['x@y.org','Ünï 42'],k,TokenizeConfig(format=f))"
        " for f in ('readable','preserve')]))"
    )
    here = [
        tokenize_strings(["x@y.org", "Ünï 42"], KEY, TokenizeConfig(format=f))
        for f in ("readable", "preserve")
    ]
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=60
    )
    assert json.loads(out.stdout) == here


def test_keep_domain_tokenizes_up_to_the_last_at() -> None:
    out = apply(["a.b@Example.org", "x@y@z.net", "no-domain", None], keep_domain=True)
    assert out[0] == reference_token(KEY.material, "a.b") + "@Example.org"
    assert out[1] == reference_token(KEY.material, "x@y") + "@z.net"
    assert out[2] == reference_token(KEY.material, "no-domain")
    assert out[3] is None


def test_normalization_exact_by_default_casefold_on_request() -> None:
    variants = ["Ann  Lee", " ann lee", "ANN LEE"]
    exact = apply(variants)
    assert len(set(exact)) == 3
    folded = apply(variants, normalize="casefold")
    assert len(set(folded)) == 1
    assert folded[0] == reference_token(KEY.material, "ann lee")
    assert normalize_text(["Straße\tX", "ﬁ"]) == ["strasse x", "fi"]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(st.none(), st.text(max_size=70)), max_size=12))
def test_format_preserving_tokens(values: list[str | None]) -> None:
    out = tokenize_strings(values, KEY, TokenizeConfig(format="preserve"))
    for v, t in zip(values, out, strict=True):
        if v is None:
            assert t is None
            continue
        assert t is not None and len(t) == len(v) and len(t.encode()) == len(v.encode())
        for a, b in zip(v, t, strict=True):
            if a.isascii() and a.isdigit():
                assert b.isascii() and b.isdigit()
            elif a.isascii() and a.islower():
                assert b.isascii() and b.islower()
            elif a.isascii() and a.isupper():
                assert b.isascii() and b.isupper()
            else:
                assert a == b
        if any(c.isascii() and c.isalnum() for c in v):
            assert t != v
        assert t == reference_preserve(KEY.material, v)


def test_format_preserving_hand_examples_and_keys() -> None:
    values = ["4111-1111-1111-1111", "AB12cd", "über-7", "a" * 40]
    out = tokenize_strings(values, KEY, TokenizeConfig(format="preserve"))
    assert out == [reference_preserve(KEY.material, v) for v in values]
    other = tokenize_strings(values, OTHER_KEY, TokenizeConfig(format="preserve"))
    assert all(a != b for a, b in zip(out, other, strict=True))
    assert out[2] is not None and out[2][0] == "ü" and out[2][4] == "-" and out[2][1:4] != "ber"
    # Within one value, repeated characters do not give repeated output.
    assert out[3] is not None and len(set(out[3])) > 5


def test_format_preserving_keeps_domain_and_counts_collisions() -> None:
    chunk = ChunkContext(pd.DataFrame({"k": range(30)}), "k")
    values = [str(i % 10) for i in range(20)] + ["---", "", *[f"{i}@x.org" for i in range(8)]]
    out = apply(values, chunk=chunk, format="preserve", keep_domain=True)
    assert out[22] is not None and out[22].endswith("@x.org") and out[22] != "0@x.org"
    locals_in = {v.rpartition("@")[0] or v for v in values}
    locals_out = {t.rpartition("@")[0] or t for t in out if t is not None}
    counters = chunk.counters["c"]
    assert counters["tokens_unchanged_no_alnum"] == 2  # "---" and ""
    assert counters["token_collisions"] == len(locals_in) - len(locals_out)
    assert out[20] == "---" and out[21] == ""


@pytest.mark.parametrize(
    "params",
    [
        {"format": "preserve", "prefix": "x"},
        {"deterministic": False},
        {"format": "fpe"},
        {"normalize": "lower"},
        {"prefix": "a b"},
        {"salt": "x"},
    ],
)
def test_config_is_strict(params: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        TokenizeConfig.model_validate(params)


def test_column_operator_and_list_function_agree() -> None:
    values = ["a@b.c", None, "Ann Lee", "x"]
    for params in (
        {},
        {"format": "preserve"},
        {"keep_domain": True},
        {"normalize": "casefold", "format": "preserve"},
    ):
        cfg = TokenizeConfig.model_validate(params)
        assert apply(values, **params) == tokenize_strings(values, KEY, cfg)


def test_describe_names_the_key_version_not_the_key() -> None:
    op = Tokenize(TokenizeConfig(format="preserve"), ColumnContext("ds", "c", PROVIDER))
    text = op.describe()
    assert "ds/token@v1" in text and "preserve" in text
    assert KEY.material.hex() not in text and repr(KEY.material) not in text


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.one_of(
            st.none(),
            st.text(
                alphabet=st.sampled_from(" \t\n\x0b\x0c\r\x1c\x1f\x85\u00a0\u2003aZß\ufb01É9-"),
                max_size=12,
            ),
            st.text(max_size=12),
        ),
        max_size=10,
    )
)
def test_vectorized_normalization_equals_the_python_definition(values: list[str | None]) -> None:
    out = normalize_array(pa.array(values, type=pa.large_string())).to_pylist()
    assert out == [None if v is None else normalize_text([v])[0] for v in values]


def test_split_domain_edge_cases() -> None:
    values = ["a@b", "x@y@z", "none", None, "@d", "e@", ""]
    local, domain = split_domain(pa.array(values, type=pa.large_string()))
    assert local.to_pylist() == ["a", "x@y", "none", None, "", "e", ""]
    assert domain.to_pylist() == ["@b", "@z", "", "", "@d", "@", ""]


@settings(max_examples=100, deadline=None)
@given(
    st.integers(1, 40).flatmap(
        lambda width: st.lists(
            st.text(alphabet=st.sampled_from("09azAZ-_ é"), min_size=width, max_size=width).filter(
                lambda v: len(v.encode()) == width
            ),
            min_size=1,
            max_size=8,
        )
    )
)
def test_fixed_width_path_matches_the_reference(values: list[str]) -> None:
    # One byte length for every value takes the matrix path: same tokens as the reference.
    out = tokenize_strings(values, KEY, TokenizeConfig(format="preserve"))
    assert out == [reference_preserve(KEY.material, v) for v in values]


def test_batching_does_not_change_tokens(monkeypatch: pytest.MonkeyPatch) -> None:
    values = ["4111111111111111", "x", "", None, "Ann Lee", "é-9", "a" * 33, "b@c.d"] * 3
    configs = [TokenizeConfig(), TokenizeConfig(format="preserve")]
    expected = [tokenize_strings(values, KEY, cfg) for cfg in configs]
    monkeypatch.setattr(tokenize_module, "BATCH_ROWS", 3)
    assert [tokenize_strings(values, KEY, cfg) for cfg in configs] == expected


@pytest.mark.parametrize(
    "params", [{}, {"format": "preserve"}, {"keep_domain": True}, {"normalize": "casefold"}]
)
def test_empty_and_all_null_chunks(params: dict[str, Any]) -> None:
    assert apply([], **params) == []
    assert apply([None, None], **params) == [None, None]
