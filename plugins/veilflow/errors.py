"""Domain errors. Each carries what a user needs to fix the problem, never a raw value.

The CLI turns any ``VeilflowError`` into one line on stderr and a non-zero exit code.

Two kinds say what a retry can do, by class rather than by a list kept beside the caller:
a ``Terminal`` error fails the same way however often it is tried (the policy, the source
or a value is wrong), so an Airflow task fails at once; a ``Transient`` error may pass on a
later try (the database was unreachable). An error of neither kind is retried as the task's
retries allow.

Every ``VeilflowError`` pickles with its fields, message included, so that an error raised
in a chunk worker of a ``ProcessPoolExecutor`` reaches the parent whole.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


class VeilflowError(Exception):
    """Base of every error veilflow raises on purpose."""

    exit_code = 1

    def __reduce__(self) -> tuple[Any, ...]:
        # Exception's own reduce calls ``cls(*self.args)``, which breaks every subclass
        # whose ``__init__`` takes other arguments than the message (``SchemaDrift``):
        # rebuild without ``__init__``, from the args and the instance's fields.
        return (_rebuild, (type(self), self.args, self.__dict__.copy()))


def _rebuild(
    cls: type[VeilflowError], args: tuple[Any, ...], fields: dict[str, Any]
) -> VeilflowError:
    """The unpickling half of ``VeilflowError.__reduce__``."""
    error = cls.__new__(cls)
    error.args = args
    error.__dict__.update(fields)
    return error


class Terminal(VeilflowError):
    """Base of the errors no retry can fix: a task that raises one fails at once."""


class Transient(VeilflowError):
    """Base of the errors a later try may not meet (the database was unreachable)."""


class PolicyError(Terminal):
    """A policy file is malformed or asks for something impossible."""

    exit_code = 2

    def __init__(
        self,
        message: str,
        *,
        file: str | None = None,
        line: int | None = None,
        field: str | None = None,
    ) -> None:
        self.file = file
        self.line = line
        self.field = field
        where = ""
        if file:
            where = file if line is None else f"{file}:{line}"
        parts = [p for p in (where, f"field {field!r}" if field else "") if p]
        prefix = ", ".join(parts)
        super().__init__(f"{prefix}: {message}" if prefix else message)


class BrokenPolicies(PolicyError):
    """Policy files of one folder that cannot be used, each with its own ``PolicyError``."""

    def __init__(self, errors: Sequence[PolicyError]) -> None:
        self.errors = tuple(errors)
        listed = "\n".join(str(e) for e in self.errors)
        super().__init__(
            f"{len(self.errors)} broken policy file(s); no DAG is built from them:\n{listed}"
        )


class SchemaDrift(Terminal):
    """The source table has columns the policy does not declare (or lacks declared ones)."""

    exit_code = 3

    def __init__(
        self, table: str, undeclared: list[str], missing: list[str], detail: str = ""
    ) -> None:
        self.table = table
        self.undeclared = undeclared
        self.missing = missing
        bits = []
        if undeclared:
            bits.append(f"undeclared column(s) {', '.join(undeclared)}")
        if missing:
            bits.append(f"declared column(s) missing from the source: {', '.join(missing)}")
        msg = f"schema drift in {table}: " + "; ".join(bits)
        msg += " (declare them in the policy, or set 'unlisted: drop')" if undeclared else ""
        if detail:
            msg += f". {detail}"
        super().__init__(msg)


class SourceError(Terminal):
    """The source table is missing or its rows break the policy's assumptions."""

    exit_code = 3


class SourceChanged(SourceError):
    """Rows an incremental run published before are no longer as it saw them (updated,
    deleted, or added below the cursor): names the cursor ranges and counts, never a value."""


class DatabaseUnavailable(Transient):
    """PostgreSQL could not be reached."""

    exit_code = 4


class TransformError(Terminal):
    """An operator could not transform a column; names the column and the rows by snapshot
    ordinal, never a key or a value."""

    exit_code = 5


class KeyNotFound(VeilflowError):
    """A data key or key version does not exist, is disabled or was destroyed."""

    exit_code = 6


class AccessDenied(VeilflowError):
    """The connected PostgreSQL login lacks the role an operation needs."""

    exit_code = 7


class ValidationFailed(Terminal):
    """The validation gate refused a candidate; it was quarantined, nothing was published."""

    exit_code = 8

    def __init__(self, message: str, reasons: list[dict[str, object]] | None = None) -> None:
        self.reasons = reasons or []
        super().__init__(message)
