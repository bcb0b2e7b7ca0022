"""Master keys: the key-encryption keys that wrap every data key.

``MasterKeyProvider`` is the port: wrap and unwrap a short secret with associated data, and a
public ``key_id`` naming the master key (recorded beside every wrapped data key, so a wrong
master key is recognised before anything is decrypted or written). A cloud KMS
(Encrypt/Decrypt with an encryption context) or HashiCorp Vault Transit (encrypt/decrypt with
a context) fit the same two calls; the built-in provider is a local AES-256-GCM key from
``VEILFLOW_MASTER_KEY`` (base64) or a key file readable by its owner only (0600).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import secrets
import stat
from pathlib import Path
from typing import Protocol, runtime_checkable

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from veilflow.config import settings
from veilflow.errors import KeyNotFound

ENV_VAR = "VEILFLOW_MASTER_KEY"
_NONCE = 12
#: Format byte of a locally wrapped blob: nonce (12) || AES-256-GCM ciphertext and tag.
_FORMAT_V1 = b"\x01"


class MasterKeyError(KeyNotFound):
    """The master key is missing, malformed, or not the one that wrapped the data keys."""


@runtime_checkable
class MasterKeyProvider(Protocol):
    """Wraps and unwraps data keys. Implementations never expose the master key itself."""

    @property
    def key_id(self) -> str:
        """A public, stable name of this master key (safe to store and print)."""
        ...

    def wrap(self, plaintext: bytes, aad: bytes) -> bytes:
        """Encrypt ``plaintext`` bound to ``aad``."""
        ...

    def unwrap(self, blob: bytes, aad: bytes) -> bytes:
        """Decrypt a blob made by ``wrap`` with the same ``aad``; ``MasterKeyError`` when the
        blob was made under another master key, for another ``aad``, or was altered."""
        ...


class LocalMasterKey:
    """A 256-bit master key held in this process, used with AES-256-GCM."""

    def __init__(self, material: bytes, *, source: str = "local") -> None:
        if len(material) != 32:
            raise MasterKeyError(f"the master key from {source} must be 32 bytes")
        self._aead = AESGCM(material)
        # A keyed fingerprint: names the key without revealing anything usable about it.
        digest = hmac.new(material, b"veilflow/master-key-id", hashlib.sha256).hexdigest()
        self._key_id = f"local:{digest[:16]}"
        self.source = source

    def __repr__(self) -> str:
        return f"LocalMasterKey({self._key_id}, source={self.source!r})"

    @property
    def key_id(self) -> str:
        return self._key_id

    def wrap(self, plaintext: bytes, aad: bytes) -> bytes:
        nonce = secrets.token_bytes(_NONCE)
        return _FORMAT_V1 + nonce + self._aead.encrypt(nonce, plaintext, aad)

    def unwrap(self, blob: bytes, aad: bytes) -> bytes:
        if len(blob) < 1 + _NONCE + 16 or blob[:1] != _FORMAT_V1:
            raise MasterKeyError("a wrapped data key is malformed")
        nonce, body = blob[1 : 1 + _NONCE], blob[1 + _NONCE :]
        try:
            return self._aead.decrypt(nonce, body, aad)
        except InvalidTag:
            raise MasterKeyError(
                f"master key {self._key_id} cannot unwrap this data key: it was wrapped under "
                "another master key, for another key id or version, or altered"
            ) from None


def _decode(text: bytes | str, source: str) -> bytes:
    try:
        key = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise MasterKeyError(f"{source} is not valid base64") from None
    if len(key) != 32:
        raise MasterKeyError(f"{source} must decode to 32 bytes")
    return key


def master_key_file() -> Path:
    return settings().home / "master.key"


def write_key_file(path: Path) -> None:
    """Create ``path`` (0600, must not exist) holding a fresh random base64 master key."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(base64.b64encode(secrets.token_bytes(32)) + b"\n")


def read_key_file(path: Path) -> bytes:
    """The master key in ``path``; refuses a file others can read or write."""
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
    except FileNotFoundError:
        raise MasterKeyError(f"no master key file at {path}") from None
    if mode & 0o077:
        raise MasterKeyError(f"{path} must be readable by its owner only (chmod 600), is {mode:o}")
    return _decode(path.read_bytes().strip(), str(path))


def master_key_from_env(var: str = ENV_VAR) -> LocalMasterKey | None:
    """The master key in environment variable ``var`` (base64), or None when unset."""
    value = os.environ.get(var)
    if not value:
        return None
    return LocalMasterKey(_decode(value.strip(), var), source=var)


def master_key_from_file(path: Path, *, create: bool = False) -> LocalMasterKey:
    """The master key in a 0600 key file; created first when absent and ``create``."""
    if create and not path.exists():
        write_key_file(path)
    return LocalMasterKey(read_key_file(path), source=str(path))


def default_master_key(*, create: bool = True) -> LocalMasterKey:
    """``VEILFLOW_MASTER_KEY`` when set, else ``$VEILFLOW_HOME/master.key`` (created 0600 on
    first use when ``create``)."""
    env = master_key_from_env()
    if env is not None:
        return env
    path = master_key_file()
    if not path.exists() and not create:
        raise MasterKeyError(f"no master key: set {ENV_VAR} or create {path}")
    return master_key_from_file(path, create=create)
