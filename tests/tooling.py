"""What some tests need from outside Python: Debian's Chromium, redis-server and
docker-compose (``scripts/system-deps.sh`` installs them), the official OpenLineage schemas.

Without it, a test skips on a developer's machine but fails in CI (the environment variable
``CI`` set, and not ``false`` or ``0``): a CI run never passes by skipping what it was meant
to prove.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any, TypeVar

import pytest

Test = TypeVar("Test", bound=Callable[..., Any])


def in_ci() -> bool:
    """Whether the tests run in CI: ``CI`` set, and not to ``false`` or ``0``."""
    return os.environ.get("CI", "").strip().lower() not in ("", "false", "0")


def require(condition: bool, what: str, how_to_install: str) -> None:
    """Go on when ``condition`` holds; else skip, or fail in CI, naming ``what`` is missing
    and how to install it."""
    if condition:
        return
    message = f"{what} not found ({how_to_install})"
    if in_ci():
        pytest.fail(f"{message}; CI is set, so this test may not skip", pytrace=False)
    pytest.skip(message)


def needs(condition: bool, what: str, how_to_install: str) -> Callable[[Test], Test]:
    """``require`` as a decorator, for a test whose fixtures are costly: when ``condition``
    does not hold, the test is replaced by one that asks for no fixture and skips (or fails
    in CI) at once. Marks go above it; a parametrized test calls ``require`` instead."""

    def decorate(test: Test) -> Test:
        if condition:
            return test

        def missing() -> None:
            require(False, what, how_to_install)

        for name in ("__module__", "__name__", "__qualname__", "__doc__"):
            setattr(missing, name, getattr(test, name))
        return missing  # type: ignore[return-value]  # stands in for the test, without its fixtures

    return decorate
