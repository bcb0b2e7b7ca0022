"""Every ``VeilflowError`` crosses a process boundary whole, and its kind decides retries.

The error classes are discovered (every module of the package imported, every subclass
walked), so that a new error class is covered the day it is written.
"""

from __future__ import annotations

import importlib
import inspect
import pickle
import pkgutil
import typing
from collections.abc import Iterator
from typing import Any

import pytest

import veilflow
from veilflow.errors import (
    DatabaseUnavailable,
    PolicyError,
    SchemaDrift,
    SourceError,
    Terminal,
    TransformError,
    Transient,
    ValidationFailed,
    VeilflowError,
)


def _subclasses(cls: type[VeilflowError]) -> Iterator[type[VeilflowError]]:
    for sub in cls.__subclasses__():
        yield sub
        yield from _subclasses(sub)


def _every_error_class() -> list[type[VeilflowError]]:
    for module in pkgutil.walk_packages(veilflow.__path__, "veilflow."):
        importlib.import_module(module.name)
    found = {VeilflowError, *_subclasses(VeilflowError)}
    return sorted(found, key=lambda c: f"{c.__module__}.{c.__qualname__}")


ERROR_CLASSES = _every_error_class()

#: A sample value per parameter type met in an error's ``__init__``; a new type makes the
#: test below fail with its name, to be added here.
_SAMPLES: dict[str, Any] = {
    "str": "staging.run_7",
    "str | None": "policies/customers.yaml",
    "int | None": 12,
    "int": 12,
    "list[str]": ["email", "phone"],
    "list[dict[str, object]] | None": [{"check": "row_count", "passed": False}],
    "Sequence[PolicyError]": [PolicyError("bad operator", file="a.yaml", line=3, field="x")],
}


def _sample(cls: type[VeilflowError]) -> VeilflowError:
    init = cls.__init__
    if init is Exception.__init__ or init is BaseException.__init__:
        return cls("what went wrong, and what to do")
    args: list[Any] = []
    kwargs: dict[str, Any] = {}
    for name, param in inspect.signature(init).parameters.items():
        if name == "self" or param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            continue
        annotation = param.annotation
        key = annotation if isinstance(annotation, str) else typing.get_type_hints(init)[name]
        assert key in _SAMPLES, f"{cls.__qualname__}.__init__ takes {name}: {key}; add a sample"
        if param.kind is param.KEYWORD_ONLY:
            kwargs[name] = _SAMPLES[key]
        else:
            args.append(_SAMPLES[key])
    return cls(*args, **kwargs)


def test_every_error_class_is_found() -> None:
    names = {c.__name__ for c in ERROR_CLASSES}
    # A few from modules other than veilflow.errors, so discovery is known to reach them.
    assert {"SchemaDrift", "KeyDestroyed", "FF1DomainError", "MigrationError"} <= names


@pytest.mark.parametrize("cls", ERROR_CLASSES, ids=lambda c: c.__qualname__)
def test_error_round_trips_through_pickle(cls: type[VeilflowError]) -> None:
    error = _sample(cls)
    back = pickle.loads(pickle.dumps(error))
    assert type(back) is cls
    assert str(back) == str(error)
    assert back.args == error.args
    assert vars(back).keys() == vars(error).keys()
    for name, value in vars(error).items():
        if isinstance(value, tuple) and value and isinstance(value[0], VeilflowError):
            assert [str(v) for v in getattr(back, name)] == [str(v) for v in value]
        else:
            assert getattr(back, name) == value, name
    assert back.exit_code == error.exit_code


def test_schema_drift_keeps_its_columns_across_processes() -> None:
    error = SchemaDrift("restricted.customers", ["ssn"], ["email"], detail="run 3")
    back = pickle.loads(pickle.dumps(error))
    assert (back.table, back.undeclared, back.missing) == (
        "restricted.customers",
        ["ssn"],
        ["email"],
    )
    assert "undeclared column(s) ssn" in str(back)


@pytest.mark.parametrize(
    "cls", [PolicyError, SchemaDrift, SourceError, TransformError, ValidationFailed]
)
def test_errors_no_retry_can_fix_are_terminal(cls: type[VeilflowError]) -> None:
    assert issubclass(cls, Terminal)
    assert not issubclass(cls, Transient)


def test_an_unreachable_database_is_transient() -> None:
    assert issubclass(DatabaseUnavailable, Transient)
    assert not issubclass(DatabaseUnavailable, Terminal)


def test_no_error_is_of_both_kinds() -> None:
    both = [c for c in ERROR_CLASSES if issubclass(c, Terminal) and issubclass(c, Transient)]
    assert both == []
