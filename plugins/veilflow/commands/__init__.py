"""CLI command groups; each module's ``register(app)`` adds its commands to ``veilflow``.

One module per area so that each area's commands live beside nothing else:
``detect`` (scan, detect, policy draft), ``vault`` (keys, access, reidentify, audit),
``validate`` (validate, risk), ``lineage`` (lineage show/export), ``serve`` (the scrub
API and its tokens).
"""

from __future__ import annotations

from pathlib import Path

import typer


def command_group(help: str) -> typer.Typer:
    """A ``veilflow <group>`` of subcommands. Help is read as Markdown, so a docstring's
    wrapped lines join into one paragraph instead of breaking where the source does."""
    return typer.Typer(rich_markup_mode="markdown", help=help, no_args_is_help=True)


def policy_file(policy: str) -> Path:
    """A policy given on the command line: a path, or a name (no suffix) of a file in the
    policies folder (``<policies_dir>/<name>.yaml``) when no such path exists."""
    p = Path(policy)
    if not p.exists() and not p.suffix:
        from veilflow.config import settings

        named = settings().policies_dir / f"{policy}.yaml"
        if named.exists():
            return named
    return p
