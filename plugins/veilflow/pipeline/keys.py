"""Where the pipeline gets its data keys: the master key from ``VEILFLOW_MASTER_KEY``
(base64) or the key file ``$VEILFLOW_HOME/master.key`` (created 0600 on first use)."""

from __future__ import annotations

import base64
import binascii
import os
import secrets
import stat
from pathlib import Path

from veilflow.config import settings
from veilflow.errors import KeyNotFound
from veilflow.transform.keys import KeyProvider, LocalKeyProvider


def master_key_file() -> Path:
    return settings().home / "master.key"


def load_master_key(create: bool = True) -> bytes:
    """The master key; never logged. Creates the key file when absent and ``create``."""
    env = os.environ.get("VEILFLOW_MASTER_KEY")
    if env:
        try:
            key = base64.b64decode(env, validate=True)
        except binascii.Error:
            raise KeyNotFound("VEILFLOW_MASTER_KEY is not valid base64") from None
        if len(key) != 32:
            raise KeyNotFound("VEILFLOW_MASTER_KEY must decode to 32 bytes")
        return key
    path = master_key_file()
    if not path.exists():
        if not create:
            raise KeyNotFound(f"no master key: set VEILFLOW_MASTER_KEY or create {path}")
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(base64.b64encode(secrets.token_bytes(32)))
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        raise KeyNotFound(f"{path} must be readable by its owner only (chmod 600), is {mode:o}")
    try:
        key = base64.b64decode(path.read_bytes().strip(), validate=True)
    except binascii.Error:
        raise KeyNotFound(f"{path} does not hold a base64 key") from None
    if len(key) != 32:
        raise KeyNotFound(f"{path} must hold a base64 32-byte key")
    return key


def default_key_provider() -> KeyProvider:
    return LocalKeyProvider(load_master_key())
