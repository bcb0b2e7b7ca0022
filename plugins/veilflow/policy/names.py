"""Names in a policy: datasets, tables, columns and releases are lower-case SQL identifiers,
checked the same way wherever a policy names one."""

from __future__ import annotations

import re
from typing import Any, TypeVar

IDENT = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
#: What a dataset's or a release's own name must be.
NAME_RULE = "must be a lower-case identifier (letters, digits, _)"
#: What a column named in a field (a key, a cursor) must be.
COLUMN_RULE = "must be a lower-case SQL identifier"

T = TypeVar("T")


def identifier(value: str, rule: str) -> str:
    """``value`` if it is a lower-case SQL identifier, else a ValueError saying ``rule``."""
    if not IDENT.match(value):
        raise ValueError(rule)
    return value


def identifier_keys(v: dict[str, T], what: str, kind: str) -> dict[str, T]:
    """A non-empty map whose every key (a ``what``: table, column) is a lower-case ``kind``."""
    if not v:
        raise ValueError(f"declare at least one {what}")
    for name in v:
        if not IDENT.match(name):
            raise ValueError(f"{what} {name!r} is not a lower-case {kind}")
    return v


def action_shorthand(v: Any) -> Any:
    """Columns as written: ``amount: keep`` is short for ``amount: {action: keep}``."""
    if isinstance(v, dict):
        return {k: ({"action": s} if isinstance(s, str) else s) for k, s in v.items()}
    return v
