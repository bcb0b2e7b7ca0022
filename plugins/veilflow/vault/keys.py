"""Data keys under envelope encryption: versions, states and their life cycle.

A data key is named ``<dataset>/<purpose>`` (purposes ``token``, ``ff1``, ``surrogate``,
``date_shift``) and has versions. Each version's 32 random bytes are stored only wrapped
(AES-256-GCM under the master key, ``veilflow/data-key/<key_id>/v<version>`` as associated
data, so a blob moved to another key or version does not open) in ``governance.data_keys``,
beside the id of the master key that wrapped it.

States: ``active`` (one per key: what new output uses), ``retired`` (an older version, still
usable to re-identify), ``disabled`` (usable by nobody until enabled again), ``destroyed``
(crypto-shredded: the wrapped material is gone, so nothing made with it can be reversed).
Every change is audited by a trigger in the same transaction.
"""

from __future__ import annotations

import logging
import re
import secrets
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

import psycopg

from veilflow.errors import KeyNotFound, VeilflowError
from veilflow.transform.keys import DataKey, key_id
from veilflow.vault.master import MasterKeyError, MasterKeyProvider

log = logging.getLogger(__name__)

STATES = ("active", "retired", "disabled", "destroyed")


class KeyDestroyed(KeyNotFound):
    """The key version was destroyed (crypto-shredding); what it made cannot be reversed."""


class KeyDisabled(KeyNotFound):
    """The key version is disabled; an admin may enable it again."""


def associated_data(kid: str, version: int) -> bytes:
    """What the wrap is bound to: the key id and version."""
    return f"veilflow/data-key/{kid}/v{version}".encode()


@dataclass(frozen=True)
class KeyVersion:
    """One version's metadata (never its material)."""

    dataset: str
    purpose: str
    version: int
    state: str
    master_key_id: str
    created_at: datetime
    created_by: str
    changed_at: datetime
    wrapped: bytes | None = field(default=None, repr=False)

    @property
    def key_id(self) -> str:
        return f"{self.dataset}/{self.purpose}"

    @property
    def ref(self) -> str:
        return f"{self.key_id}@v{self.version}"


_COLUMNS = (
    "dataset, purpose, version, state, master_key_id, created_at, created_by, changed_at, wrapped"
)


def _versions(
    conn: psycopg.Connection, where: str, params: tuple[object, ...], lock: bool = False
) -> list[KeyVersion]:
    rows = conn.execute(
        f"SELECT {_COLUMNS} FROM governance.data_keys WHERE {where}"
        f" ORDER BY dataset, purpose, version{' FOR UPDATE' if lock else ''}",
        params,
    ).fetchall()
    return [
        KeyVersion(
            r[0],
            r[1],
            r[2],
            r[3],
            r[4],
            r[5],
            r[6],
            r[7],
            bytes(r[8]) if r[8] is not None else None,
        )
        for r in rows
    ]


def list_keys(conn: psycopg.Connection, dataset: str | None = None) -> list[KeyVersion]:
    """Every key version (of one dataset when given), metadata only."""
    return _versions(conn, "(%s::text IS NULL OR dataset = %s)", (dataset, dataset))


def check_master(conn: psycopg.Connection, master: MasterKeyProvider) -> None:
    """Refuse a master key other than the one that wrapped the stored data keys, before
    anything is read or written with it."""
    rows = conn.execute(
        "SELECT DISTINCT master_key_id FROM governance.data_keys WHERE wrapped IS NOT NULL"
    ).fetchall()
    others = sorted(r[0] for r in rows if r[0] != master.key_id)
    if others:
        raise MasterKeyError(
            f"the master key in use ({master.key_id}) is not the one that wrapped the stored "
            f"data keys ({', '.join(others)}); set VEILFLOW_MASTER_KEY or the key file to the "
            "right key (after a rewrap, to the new one). Nothing was changed."
        )


def _insert(
    conn: psycopg.Connection, master: MasterKeyProvider, dataset: str, purpose: str, version: int
) -> None:
    kid = key_id(dataset, purpose)
    wrapped = master.wrap(secrets.token_bytes(32), associated_data(kid, version))
    conn.execute(
        "INSERT INTO governance.data_keys (dataset, purpose, version, state, wrapped,"
        " master_key_id) VALUES (%s, %s, %s, 'active', %s, %s)",
        (dataset, purpose, version, wrapped, master.key_id),
    )


def ensure_key(
    conn: psycopg.Connection, master: MasterKeyProvider, dataset: str, purpose: str
) -> bool:
    """Create version 1 of ``dataset/purpose`` if the key has no version at all; True when
    created. Safe against a concurrent first use (one of them wins)."""
    kid = key_id(dataset, purpose)
    with conn.transaction():
        check_master(conn, master)
        conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (f"veilflow-key:{kid}",))
        if _versions(conn, "dataset = %s AND purpose = %s", (dataset, purpose)):
            return False
        _insert(conn, master, dataset, purpose, 1)
    log.info("created data key %s@v1", kid)
    return True


def create_key(
    conn: psycopg.Connection, master: MasterKeyProvider, dataset: str, purpose: str
) -> KeyVersion:
    """Create a new key (version 1); an error if the key already exists (rotate it)."""
    kid = key_id(dataset, purpose)
    if not ensure_key(conn, master, dataset, purpose):
        raise VeilflowError(f"key {kid} already exists; rotate it for a new version")
    return _versions(conn, "dataset = %s AND purpose = %s", (dataset, purpose))[-1]


def rotate_key(
    conn: psycopg.Connection, master: MasterKeyProvider, dataset: str, purpose: str
) -> KeyVersion:
    """Add a new active version; the previous active one becomes ``retired`` (still usable
    to re-identify what it made). Creates version 1 when the key does not exist yet."""
    kid = key_id(dataset, purpose)
    with conn.transaction():
        check_master(conn, master)
        conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (f"veilflow-key:{kid}",))
        current = _versions(conn, "dataset = %s AND purpose = %s", (dataset, purpose), lock=True)
        conn.execute(
            "UPDATE governance.data_keys SET state = 'retired'"
            " WHERE dataset = %s AND purpose = %s AND state = 'active'",
            (dataset, purpose),
        )
        version = max((v.version for v in current), default=0) + 1
        _insert(conn, master, dataset, purpose, version)
    log.info("rotated data key %s to v%d", kid, version)
    return _versions(
        conn, "dataset = %s AND purpose = %s AND version = %s", (dataset, purpose, version)
    )[0]


def _set_state(
    conn: psycopg.Connection,
    dataset: str,
    purpose: str,
    version: int,
    allowed_from: Iterable[str],
    state: str,
    *,
    shred: bool = False,
) -> KeyVersion:
    kid = key_id(dataset, purpose)
    with conn.transaction():
        found = _versions(
            conn,
            "dataset = %s AND purpose = %s AND version = %s",
            (dataset, purpose, version),
            lock=True,
        )
        if not found:
            raise KeyNotFound(f"key {kid} has no version {version}")
        current = found[0]
        if current.state == state:
            return current
        if current.state not in allowed_from:
            raise VeilflowError(f"key {current.ref} is {current.state}; cannot make it {state}")
        if state == "active":
            conn.execute(
                "UPDATE governance.data_keys SET state = 'retired'"
                " WHERE dataset = %s AND purpose = %s AND state = 'active'",
                (dataset, purpose),
            )
        conn.execute(
            "UPDATE governance.data_keys SET state = %s"
            f"{', wrapped = NULL' if shred else ''}"
            " WHERE dataset = %s AND purpose = %s AND version = %s",
            (state, dataset, purpose, version),
        )
    log.info("key %s@v%d is now %s", kid, version, state)
    with conn.transaction():  # leaves a connection without autocommit idle, as it was
        return _versions(
            conn, "dataset = %s AND purpose = %s AND version = %s", (dataset, purpose, version)
        )[0]


def disable_key(conn: psycopg.Connection, dataset: str, purpose: str, version: int) -> KeyVersion:
    """Make a version unusable (for new output and for re-identification) until enabled."""
    return _set_state(conn, dataset, purpose, version, ("active", "retired"), "disabled")


def enable_key(conn: psycopg.Connection, dataset: str, purpose: str, version: int) -> KeyVersion:
    """Make a disabled version usable again, as ``retired`` (re-identification only)."""
    return _set_state(conn, dataset, purpose, version, ("disabled",), "retired")


def destroy_key(conn: psycopg.Connection, dataset: str, purpose: str, version: int) -> KeyVersion:
    """Crypto-shredding: erase the wrapped material of one version. Irreversible.

    Setting the column to NULL leaves the old row version, wrapped bytes included, in the
    table's file until its space is reused; once the destroy has committed, the table is
    rewritten into a new file (``VACUUM (FULL)``) so no copy stays behind. What lies outside
    the table's files (WAL, archives, backups, replicas) is out of reach: see the README,
    "Key vault". Needs a connection outside any transaction block (VACUUM cannot run inside
    one) and the MAINTAIN privilege on the table (``veilflow_admin`` has it); both are
    checked before anything changes. A transaction older than the destroy makes the rewrite
    keep the old row version: that is an error, and destroying the version again once the
    transaction has ended rewrites the table again."""
    _check_can_rewrite(conn)
    destroyed = _set_state(
        conn, dataset, purpose, version, ("active", "retired", "disabled"), "destroyed", shred=True
    )
    _rewrite_data_keys(conn, destroyed.ref)
    return destroyed


def _check_can_rewrite(conn: psycopg.Connection) -> None:
    if conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
        raise VeilflowError(
            "destroying a key rewrites governance.data_keys after the destroy commits, which "
            "cannot happen inside a transaction block; destroy on a connection outside one. "
            "Nothing was changed."
        )
    with conn.transaction():  # its own, so a connection without autocommit stays idle
        row = conn.execute(
            "SELECT has_table_privilege('governance.data_keys', 'MAINTAIN')"
        ).fetchone()
    if not (row and row[0]):
        # VACUUM without the privilege only warns and skips the table: the old wrapped
        # bytes would stay while the destroy reported success.
        raise VeilflowError(
            "destroying a key rewrites governance.data_keys, which needs the MAINTAIN "
            "privilege on it (veilflow_admin has it; run veilflow db upgrade). Nothing was "
            "changed."
        )


#: VACUUM VERBOSE's count of dead row versions a rewrite had to keep (the server's messages
#: are English unless lc_messages says otherwise; the embedded server's are).
_KEPT = re.compile(r"(\d+) dead row versions cannot be removed yet")


def _rewrite_data_keys(conn: psycopg.Connection, ref: str) -> None:
    # A plain VACUUM frees the dead row version's space but can leave its bytes in the page
    # until reused; VACUUM FULL copies the rows into a new file and drops the old one. It
    # copies a dead row version too while a transaction older than the destroy could still
    # see it, which VERBOSE reports.
    kept = 0

    def count_kept(diag: psycopg.errors.Diagnostic) -> None:
        nonlocal kept
        found = _KEPT.search(diag.message_detail or "")
        kept += int(found.group(1)) if found else 0

    autocommit = conn.autocommit
    conn.autocommit = True
    conn.add_notice_handler(count_kept)
    try:
        conn.execute("VACUUM (FULL, VERBOSE) governance.data_keys")
    except psycopg.Error as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise VeilflowError(
            f"key {ref} was destroyed, but rewriting governance.data_keys failed ({reason}); "
            f"its old wrapped bytes stay in the table's files until a repeated "
            f"'veilflow keys destroy {ref} --yes' rewrites it"
        ) from exc
    finally:
        conn.remove_notice_handler(count_kept)
        conn.autocommit = autocommit
    if kept:
        raise VeilflowError(
            f"key {ref} was destroyed, but a transaction that began before the destroy is still "
            f"open in this database, so rewriting governance.data_keys kept {kept} old row "
            f"version(s), which may hold its wrapped bytes; once that transaction ends, repeat "
            f"'veilflow keys destroy {ref} --yes' to rewrite the table again"
        )
    log.info("rewrote governance.data_keys: no copy of %s's wrapped material is left in it", ref)


def rewrap_keys(conn: psycopg.Connection, old: MasterKeyProvider, new: MasterKeyProvider) -> int:
    """Re-encrypt every stored data key under ``new``; no data key changes. All or nothing:
    a key that ``old`` cannot open stops the rewrap before anything is written."""
    with conn.transaction():
        check_master(conn, old)
        conn.execute("LOCK TABLE governance.data_keys IN SHARE ROW EXCLUSIVE MODE")
        versions = _versions(conn, "wrapped IS NOT NULL", ())
        rewrapped = []
        for v in versions:
            assert v.wrapped is not None
            aad = associated_data(v.key_id, v.version)
            rewrapped.append((new.wrap(old.unwrap(v.wrapped, aad), aad), v))
        for blob, v in rewrapped:
            conn.execute(
                "UPDATE governance.data_keys SET wrapped = %s, master_key_id = %s"
                " WHERE dataset = %s AND purpose = %s AND version = %s",
                (blob, new.key_id, v.dataset, v.purpose, v.version),
            )
    log.info("rewrapped %d data key version(s) under master key %s", len(versions), new.key_id)
    return len(versions)


def resolve(
    conn: psycopg.Connection, dataset: str, purpose: str, version: int | None
) -> KeyVersion:
    """The stored version asked for (the active one when ``version`` is None), or a clear
    error: unknown key, no such version, disabled, destroyed."""
    kid = key_id(dataset, purpose)
    if version is None:
        found = _versions(
            conn, "dataset = %s AND purpose = %s AND state = 'active'", (dataset, purpose)
        )
        if not found:
            if _versions(conn, "dataset = %s AND purpose = %s", (dataset, purpose)):
                raise KeyNotFound(
                    f"key {kid} has no active version; an admin can rotate it "
                    "(veilflow keys rotate)"
                )
            raise KeyNotFound(f"no data key {kid}")
        return found[0]
    found = _versions(
        conn, "dataset = %s AND purpose = %s AND version = %s", (dataset, purpose, version)
    )
    if not found:
        raise KeyNotFound(f"key {kid} has no version {version}")
    v = found[0]
    if v.state == "destroyed":
        raise KeyDestroyed(
            f"key version {v.ref} was destroyed (crypto-shredded); what it "
            "encrypted or tokenized can no longer be reversed"
        )
    if v.state == "disabled":
        raise KeyDisabled(f"key version {v.ref} is disabled; an admin can enable it")
    return v


def unwrap(master: MasterKeyProvider, version: KeyVersion) -> DataKey:
    """The data key of a stored version (in memory only)."""
    if version.wrapped is None:
        raise KeyDestroyed(f"key version {version.ref} was destroyed (crypto-shredded)")
    if version.master_key_id != master.key_id:
        raise MasterKeyError(
            f"key {version.ref} was wrapped under master key {version.master_key_id}, not the "
            f"one in use ({master.key_id}); set VEILFLOW_MASTER_KEY or the key file to the "
            "right key. Nothing was changed."
        )
    material = master.unwrap(version.wrapped, associated_data(version.key_id, version.version))
    return DataKey(key_id=version.key_id, version=version.version, material=material)
