"""Where the pipeline gets its data keys: the vault (``governance.data_keys``), unwrapped with
the master key from ``VEILFLOW_MASTER_KEY`` (base64) or the key file
``$VEILFLOW_HOME/master.key`` (created 0600 on first use).

The provider connects as the pipeline's own login (the zones URL), must hold
``veilflow_pipeline``, and creates a dataset's first key version on first use. A master key
other than the one that wrapped the stored keys stops the run before anything is written.
"""

from __future__ import annotations

from pathlib import Path

from veilflow.transform.keys import KeyProvider, parse_key_ref
from veilflow.vault.master import default_master_key
from veilflow.vault.master import master_key_file as _master_key_file
from veilflow.vault.provider import VaultKeyProvider
from veilflow.zones.db import connect
from veilflow.zones.manifest import RunManifest


def master_key_file() -> Path:
    return _master_key_file()


def default_key_provider() -> KeyProvider:
    """The vault-backed provider for a pipeline run (one per run or task: it pins the
    active key versions it hands out and unwraps each once)."""
    return VaultKeyProvider(default_master_key(), connect, operation="encrypt")


def pin_run_keys(keys: KeyProvider, manifest: RunManifest) -> None:
    """Make ``keys`` hand out the key versions extract recorded for this run, so every task
    of a run encrypts alike even when a key is rotated while the run is under way."""
    pin = getattr(keys, "pin", None)
    if pin is None:
        return
    for col in manifest.columns:
        if col.key:
            dataset, purpose, version = parse_key_ref(col.key)
            if version is not None:
                pin(dataset, purpose, version)
