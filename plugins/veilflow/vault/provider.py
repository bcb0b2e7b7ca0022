"""``VaultKeyProvider``: the transform operators' ``KeyProvider`` backed by the vault.

Each data key is unwrapped once per provider and kept in memory, so a chunk (or a whole run)
pays one database round trip and one unwrap per key version, not one per value. The active
version is pinned at first use: everything one provider encrypts uses the same version, the
one the run manifest records.

The role check runs once per provider, against the login of the connection the provider
opens (``operation="encrypt"`` needs ``veilflow_pipeline``; ``operation="reidentify"`` needs
``veilflow_steward`` and a stated purpose). The pipeline may create a dataset's first key
version on first use, so a first run on a fresh database just works.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Literal

import psycopg

from veilflow.errors import KeyNotFound
from veilflow.transform.keys import DataKey, key_id
from veilflow.vault.access import require
from veilflow.vault.keys import check_master, ensure_key, resolve, unwrap
from veilflow.vault.master import MasterKeyProvider

log = logging.getLogger(__name__)

Operation = Literal["encrypt", "reidentify"]


class VaultKeyProvider:
    """Data keys from ``governance.data_keys``, unwrapped with ``master``."""

    def __init__(
        self,
        master: MasterKeyProvider,
        connect: Callable[[], psycopg.Connection],
        *,
        operation: Operation = "encrypt",
        purpose: str | None = None,
        create_missing: bool = True,
    ) -> None:
        self._master = master
        self._connect = connect
        self.operation = operation
        self.purpose = purpose
        self.create_missing = create_missing and operation == "encrypt"
        self._keys: dict[tuple[str, str, int], DataKey] = {}
        self._active: dict[tuple[str, str], int] = {}
        self._checked: set[str] = set()
        self._lock = threading.Lock()
        self.unwraps = 0

    def __repr__(self) -> str:
        return (
            f"VaultKeyProvider(master={self._master.key_id}, operation={self.operation!r},"
            f" cached={len(self._keys)})"
        )

    def data_key(self, dataset: str, purpose: str, version: int | None = None) -> DataKey:
        if version is None:
            version = self._active.get((dataset, purpose))
        if version is not None:
            hit = self._keys.get((dataset, purpose, version))
            if hit is not None:
                return hit
        with self._lock:
            return self._fetch(dataset, purpose, version)

    def pin(self, dataset: str, purpose: str, version: int) -> None:
        """Use ``version`` as this provider's active version of ``dataset/purpose`` (e.g. the
        version a run's manifest recorded, so every task of the run encrypts alike even if
        the key is rotated mid-run). It must not be disabled or destroyed."""
        self._active[(dataset, purpose)] = version

    def _fetch(self, dataset: str, purpose: str, version: int | None) -> DataKey:
        kid = key_id(dataset, purpose)
        if version is None and self.operation != "encrypt":
            raise KeyNotFound(f"re-identification names the key version of {kid} explicitly")
        with self._connect() as conn:
            conn.autocommit = True
            self._check(conn, kid)
            check_master(conn, self._master)
            try:
                stored = resolve(conn, dataset, purpose, version)
            except KeyNotFound:
                if not (version is None and self.create_missing):
                    raise
                ensure_key(conn, self._master, dataset, purpose)
                stored = resolve(conn, dataset, purpose, None)
            key = unwrap(self._master, stored)
        self.unwraps += 1
        self._keys[(dataset, purpose, key.version)] = key
        if version is None:
            self._active[(dataset, purpose)] = key.version
        log.debug("unwrapped data key %s", key.ref)
        return key

    def _check(self, conn: psycopg.Connection, kid: str) -> None:
        if kid in self._checked:
            return
        action = "key.use" if self.operation == "encrypt" else "reidentify.key"
        require(conn, self.operation, action=action, target=kid, purpose=self.purpose)
        self._checked.add(kid)

    def forget(self) -> None:
        """Drop every cached data key (e.g. after a destroy in this process)."""
        with self._lock:
            self._keys.clear()
            self._active.clear()
            self._checked.clear()
