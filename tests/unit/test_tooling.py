"""A test that needs a tool from outside Python skips without it, except in CI, where it fails."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import cast

import pytest

from tests.tooling import in_ci, needs, require

SKIPPED = pytest.skip.Exception
FAILED = pytest.fail.Exception


@pytest.mark.parametrize(
    ("value", "ci"),
    [
        (None, False),
        ("", False),
        ("false", False),
        ("False", False),
        ("0", False),
        ("true", True),
        ("1", True),
        ("yes", True),
    ],
)
def test_ci_is_set_unless_empty_false_or_0(
    monkeypatch: pytest.MonkeyPatch, value: str | None, ci: bool
) -> None:
    if value is None:
        monkeypatch.delenv("CI", raising=False)
    else:
        monkeypatch.setenv("CI", value)
    assert in_ci() is ci


def test_a_present_tool_lets_the_test_run(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CI", "true")
    require(True, "redis-server", "apt-get install redis-server")


def test_a_missing_tool_skips_outside_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(SKIPPED, match=r"redis-server not found \(apt-get install redis-server\)"):
        require(False, "redis-server", "apt-get install redis-server")


def test_a_missing_tool_fails_in_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CI", "true")
    with pytest.raises(FAILED, match=r"redis-server not found .*CI is set, so this test may not"):
        require(False, "redis-server", "apt-get install redis-server")


def _costly(browser: object, airflow: object) -> None:
    """Drives a browser."""


def test_the_decorator_keeps_a_test_whose_tool_is_there() -> None:
    assert needs(True, "chromium", "apt-get install chromium")(_costly) is _costly


def test_the_decorator_stands_in_without_the_fixtures(monkeypatch: pytest.MonkeyPatch) -> None:
    decorate = needs(False, "chromium", "apt-get install chromium")
    stand_in = cast("Callable[[], None]", decorate(_costly))  # it takes no fixture
    assert (stand_in.__name__, stand_in.__doc__) == ("_costly", "Drives a browser.")
    assert not inspect.signature(stand_in).parameters  # no fixture is set up for nothing
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(SKIPPED, match="chromium not found"):
        stand_in()
    monkeypatch.setenv("CI", "1")
    with pytest.raises(FAILED, match="chromium not found"):
        stand_in()
