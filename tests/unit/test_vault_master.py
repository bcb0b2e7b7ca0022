"""Master keys and envelope encryption of data keys: AES-256-GCM with the key id and version
bound as associated data; nothing secret in a repr; key files must be 0600."""

from __future__ import annotations

import base64
import os
from datetime import UTC
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from veilflow.transform.keys import DataKey, parse_key_ref
from veilflow.vault.keys import (
    KeyDestroyed,
    KeyVersion,
    associated_data,
    unwrap,
)
from veilflow.vault.master import (
    LocalMasterKey,
    MasterKeyError,
    MasterKeyProvider,
    default_master_key,
    master_key_from_env,
    master_key_from_file,
)

MATERIAL = bytes(range(100, 132))


def _version(
    master: LocalMasterKey, material: bytes, version: int = 1, kid: str = "customers/token"
) -> KeyVersion:
    from datetime import datetime

    now = datetime.now(UTC)
    dataset, purpose = kid.split("/")
    return KeyVersion(
        dataset,
        purpose,
        version,
        "active",
        master.key_id,
        now,
        "t",
        now,
        master.wrap(material, associated_data(kid, version)),
    )


def test_wrap_is_aes_256_gcm_with_the_key_id_and_version_as_associated_data() -> None:
    master = LocalMasterKey(MATERIAL)
    blob = master.wrap(b"k" * 32, b"veilflow/data-key/customers/token/v3")
    assert blob[0] == 1 and len(blob) == 1 + 12 + 32 + 16
    # Independent check with the primitive itself: nonce, ciphertext||tag, same aad.
    plain = AESGCM(MATERIAL).decrypt(blob[1:13], blob[13:], b"veilflow/data-key/customers/token/v3")
    assert plain == b"k" * 32
    assert associated_data("customers/token", 3) == b"veilflow/data-key/customers/token/v3"


def test_a_blob_does_not_open_for_another_key_or_version() -> None:
    master = LocalMasterKey(MATERIAL)
    stored = _version(master, b"d" * 32, version=1)
    assert unwrap(master, stored).material == b"d" * 32
    moved = KeyVersion(**{**stored.__dict__, "version": 2})
    with pytest.raises(MasterKeyError, match="cannot unwrap"):
        unwrap(master, moved)
    other_purpose = KeyVersion(**{**stored.__dict__, "purpose": "ff1"})
    with pytest.raises(MasterKeyError):
        unwrap(master, other_purpose)


def test_a_wrong_master_key_is_named_not_decrypted() -> None:
    right, wrong = LocalMasterKey(MATERIAL), LocalMasterKey(bytes(32))
    stored = _version(right, b"d" * 32)
    with pytest.raises(MasterKeyError, match="wrapped under master key local:"):
        unwrap(wrong, stored)
    relabelled = KeyVersion(**{**stored.__dict__, "master_key_id": wrong.key_id})
    with pytest.raises(MasterKeyError, match="cannot unwrap"):
        unwrap(wrong, relabelled)


def test_tampered_blob_is_refused() -> None:
    master = LocalMasterKey(MATERIAL)
    stored = _version(master, b"d" * 32)
    assert stored.wrapped is not None
    flipped = bytearray(stored.wrapped)
    flipped[20] ^= 1
    with pytest.raises(MasterKeyError):
        unwrap(master, KeyVersion(**{**stored.__dict__, "wrapped": bytes(flipped)}))


def test_destroyed_version_says_so() -> None:
    master = LocalMasterKey(MATERIAL)
    stored = KeyVersion(
        **{**_version(master, b"d" * 32).__dict__, "wrapped": None, "state": "destroyed"}
    )
    with pytest.raises(KeyDestroyed, match="destroyed"):
        unwrap(master, stored)


def test_nothing_secret_in_reprs() -> None:
    master = LocalMasterKey(MATERIAL)
    key = unwrap(master, _version(master, b"\x07" * 32))
    stored = _version(master, b"\x07" * 32)
    for text in (repr(master), str(master), repr(key), repr(stored)):
        assert MATERIAL.hex() not in text and "\\x07" not in text
        assert base64.b64encode(MATERIAL).decode() not in text
    assert isinstance(master, MasterKeyProvider)
    assert master.key_id.startswith("local:") and len(master.key_id) == 22
    assert LocalMasterKey(MATERIAL).key_id == master.key_id != LocalMasterKey(bytes(32)).key_id
    assert isinstance(key, DataKey) and key.ref == "customers/token@v1"


def test_env_key_must_be_base64_of_32_bytes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VF_TEST_MK", base64.b64encode(MATERIAL).decode())
    key = master_key_from_env("VF_TEST_MK")
    assert key is not None and key.key_id == LocalMasterKey(MATERIAL).key_id
    monkeypatch.setenv("VF_TEST_MK", "not base64!")
    with pytest.raises(MasterKeyError, match="not valid base64"):
        master_key_from_env("VF_TEST_MK")
    monkeypatch.setenv("VF_TEST_MK", base64.b64encode(b"short").decode())
    with pytest.raises(MasterKeyError, match="32 bytes"):
        master_key_from_env("VF_TEST_MK")
    monkeypatch.delenv("VF_TEST_MK")
    assert master_key_from_env("VF_TEST_MK") is None


def test_key_file_is_created_0600_and_refused_when_others_can_read(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "master.key"
    first = master_key_from_file(path, create=True)
    assert (path.stat().st_mode & 0o777) == 0o600
    assert master_key_from_file(path).key_id == first.key_id
    os.chmod(path, 0o644)
    with pytest.raises(MasterKeyError, match="chmod 600"):
        master_key_from_file(path)
    with pytest.raises(MasterKeyError, match="no master key file"):
        master_key_from_file(tmp_path / "absent.key")


def test_default_prefers_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("VEILFLOW_HOME", str(tmp_path))
    monkeypatch.setenv("VEILFLOW_MASTER_KEY", base64.b64encode(MATERIAL).decode())
    assert default_master_key().key_id == LocalMasterKey(MATERIAL).key_id
    monkeypatch.delenv("VEILFLOW_MASTER_KEY")
    with pytest.raises(MasterKeyError, match="no master key"):
        default_master_key(create=False)
    made = default_master_key()
    assert (tmp_path / "master.key").exists() and made.source.endswith("master.key")


@pytest.mark.parametrize(
    "ref,expected",
    [
        ("customers/token", ("customers", "token", None)),
        ("customers/ff1@v12", ("customers", "ff1", 12)),
    ],
)
def test_key_refs(ref: str, expected: tuple[str, str, int | None]) -> None:
    assert parse_key_ref(ref) == expected


@pytest.mark.parametrize("ref", ["customers", "customers/nope", "customers/token@2", "/token"])
def test_bad_key_refs(ref: str) -> None:
    from veilflow.errors import KeyNotFound

    with pytest.raises(KeyNotFound):
        parse_key_ref(ref)
