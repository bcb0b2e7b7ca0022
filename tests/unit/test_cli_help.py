"""Every command's help reads as its docstring says: wrapped source lines join into one
paragraph, and placeholders such as ``<dataset>`` survive the Markdown rendering."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from typer.main import get_command
from typer.testing import CliRunner

from veilflow.cli import app


def commands() -> Iterator[tuple[list[str], Any]]:
    def walk(command: Any, path: list[str]) -> Iterator[tuple[list[str], Any]]:
        yield path, command
        if hasattr(command, "list_commands"):
            for name in command.list_commands(None):
                yield from walk(command.get_command(None, name), [*path, name])

    yield from walk(get_command(app), [])


ALL = list(commands())


def rendered(path: list[str]) -> str:
    out = CliRunner().invoke(app, [*path, "--help"], env={"COLUMNS": "1000"})
    assert out.exit_code == 0, out.output
    return re.sub(r"[│╭╮╰╯─]", " ", out.output)


def test_every_command_has_help() -> None:
    assert len(ALL) > 30
    missing = [" ".join(p) for p, c in ALL if p and not (c.help or "").strip()]
    assert not missing


@pytest.mark.parametrize(("path", "command"), ALL, ids=[" ".join(p) or "veilflow" for p, _ in ALL])
def test_help_keeps_the_first_paragraph_whole_and_every_placeholder(
    path: list[str], command: Any
) -> None:
    text = rendered(path)
    lines = [" ".join(line.split()) for line in text.splitlines()]
    first = " ".join((command.help or "").split("\n\n")[0].split())
    plain = first.replace("``", "").replace("`", "")
    assert any(plain in line for line in lines), f"help of {path} is broken up: {plain!r}"
    for param in getattr(command, "params", []):
        for placeholder in re.findall(r"<[^<>\s]+>", getattr(param, "help", None) or ""):
            assert placeholder in text, f"{placeholder} lost from {path} {param.name}"
