"""FF1 against the NIST SP 800-38G sample vectors (source in vectors/nist_ff1.json), one test
id per vector, through the string API and through both arithmetic paths."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from veilflow.transform import ff1

_DATA = json.loads((Path(__file__).parent / "vectors" / "nist_ff1.json").read_text())
VECTORS: list[dict[str, Any]] = _DATA["vectors"]
_BASE36 = "0123456789abcdefghijklmnopqrstuvwxyz"


def _id(v: dict[str, Any]) -> str:
    return f"sample{v['sample']}-{v['cipher']}-radix{v['radix']}"


def test_all_nine_samples_present() -> None:
    assert [v["sample"] for v in VECTORS] == list(range(1, 10))
    assert "csrc.nist.gov" in _DATA["source"]


@pytest.mark.parametrize("v", VECTORS, ids=_id)
def test_encrypt(v: dict[str, Any]) -> None:
    key, tweak = bytes.fromhex(v["key"]), bytes.fromhex(v["tweak"])
    assert ff1.encrypt(key, tweak, [v["plaintext"]], _BASE36[: v["radix"]]) == [v["ciphertext"]]


@pytest.mark.parametrize("v", VECTORS, ids=_id)
def test_decrypt(v: dict[str, Any]) -> None:
    key, tweak = bytes.fromhex(v["key"]), bytes.fromhex(v["tweak"])
    assert ff1.decrypt(key, tweak, [v["ciphertext"]], _BASE36[: v["radix"]]) == [v["plaintext"]]


@pytest.mark.parametrize("wide", [False, True], ids=["uint64", "wide"])
@pytest.mark.parametrize("v", VECTORS, ids=_id)
def test_numeral_paths_and_row_tweaks(v: dict[str, Any], wide: bool) -> None:
    """Both arithmetic paths, with the tweak given once and as one row per value."""
    key, tweak = bytes.fromhex(v["key"]), bytes.fromhex(v["tweak"])
    x = np.array([[_BASE36.index(c) for c in v["plaintext"]]] * 3)
    expected = np.array([[_BASE36.index(c) for c in v["ciphertext"]]] * 3)
    cipher = ff1.FF1(key)
    rows = np.frombuffer(tweak * 3, dtype=np.uint8).reshape(3, len(tweak))
    for tw in (tweak, rows):
        enc = cipher.encrypt_numerals(x, v["radix"], tw, wide=wide)
        assert (enc == expected).all()
        assert (cipher.decrypt_numerals(enc, v["radix"], tw, wide=wide) == x).all()
