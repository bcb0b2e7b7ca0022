"""The key-provider port the operators draw their data keys from.

The vault (``veilflow.vault``) supplies the real, role-checked provider; ``LocalKeyProvider``
derives data keys from a single master secret for the embedded default and for tests.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from veilflow.errors import KeyNotFound

PURPOSES = ("token", "ff1", "surrogate", "date_shift")


def key_id(dataset: str, purpose: str) -> str:
    """``<dataset>/<purpose>``, the name of a data key, once both parts are valid."""
    if purpose not in PURPOSES:
        raise KeyNotFound(f"unknown key purpose {purpose!r}; known: {', '.join(PURPOSES)}")
    if not dataset or "/" in dataset or "@" in dataset:
        raise KeyNotFound(f"invalid dataset name for a key: {dataset!r}")
    return f"{dataset}/{purpose}"


def parse_key_ref(ref: str) -> tuple[str, str, int | None]:
    """``customers/token`` or ``customers/token@v2`` -> (dataset, purpose, version): the
    one parser of key references. A reference without ``@v<number>`` has version None,
    never a guessed one; anything malformed raises ``KeyNotFound``."""
    name, _, ver = ref.partition("@")
    dataset, _, purpose = name.partition("/")
    key_id(dataset, purpose)
    if not ver:
        return dataset, purpose, None
    if not ver.startswith("v") or not ver[1:].isdigit():
        raise KeyNotFound(f"key reference {ref!r}: the version is written @v<number>")
    return dataset, purpose, int(ver[1:])


@dataclass(frozen=True)
class DataKey:
    """One version of one data key. ``material`` never appears in a repr or a log."""

    key_id: str
    version: int
    material: bytes = field(repr=False)

    @property
    def ref(self) -> str:
        """The public name of this key version, safe to record in manifests and lineage."""
        return f"{self.key_id}@v{self.version}"


@runtime_checkable
class KeyProvider(Protocol):
    """Hands out data keys by dataset and purpose (``token``, ``ff1``, ``surrogate``, ...)."""

    def data_key(self, dataset: str, purpose: str, version: int | None = None) -> DataKey:
        """The active version when ``version`` is None, else that version (for decryption)."""
        ...


class LocalKeyProvider:
    """Derives 256-bit data keys from one master secret with HMAC-SHA256 (a KDF in the
    HKDF-expand style): the same master key always yields the same data keys, so tokens stay
    joinable across runs. Version 1 only; rotation needs the vault."""

    def __init__(self, master_key: bytes) -> None:
        if len(master_key) < 32:
            raise ValueError("master key must be at least 32 bytes")
        self._master = master_key
        self._cache: dict[tuple[str, str, int], DataKey] = {}

    def __repr__(self) -> str:
        return "LocalKeyProvider(<master key hidden>)"

    def data_key(self, dataset: str, purpose: str, version: int | None = None) -> DataKey:
        v = 1 if version is None else version
        if v != 1:
            raise KeyNotFound(f"key {dataset}/{purpose} has no version {v} in the local provider")
        cache_key = (dataset, purpose, v)
        key = self._cache.get(cache_key)
        if key is None:
            info = f"veilflow/data-key/{dataset}/{purpose}/v{v}".encode()
            material = hmac.new(self._master, info + b"\x01", hashlib.sha256).digest()
            key = DataKey(key_id=f"{dataset}/{purpose}", version=v, material=material)
            self._cache[cache_key] = key
        return key
