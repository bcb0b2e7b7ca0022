"""A secret handed to a person in a new file: a login's password, an API token."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from veilflow.errors import Terminal


class SecretFileError(Terminal):
    """The file for a secret cannot be made."""


@contextmanager
def new_secret_file(path: Path, secret: str, what: str) -> Iterator[None]:
    """Write ``secret`` to ``path``, a file this call creates (mode 0600, never an existing
    one), then run the block that puts the secret in force; remove the file when the block
    fails. So no secret is left that opens nothing, and none is put in force without a copy
    for its owner. ``what`` names the secret in errors ("the password", "the token")."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise SecretFileError(f"{path} exists; name a new file for {what}") from None
    except OSError as exc:
        raise SecretFileError(
            f"{path}: cannot create the file for {what} ({exc.strerror})"
        ) from None
    try:
        with os.fdopen(fd, "w") as f:
            f.write(secret + "\n")
        yield
    except BaseException:
        path.unlink(missing_ok=True)
        raise
