"""CLI command groups; each module's ``register(app)`` adds its commands to ``veilflow``.

One module per area so that each area's commands live beside nothing else:
``detect`` (scan, detect, policy draft), ``vault`` (keys, access, reidentify, audit),
``validate`` (validate, risk), ``lineage`` (lineage show/export), ``serve`` (the scrub
API and its tokens).
"""

from __future__ import annotations

import typer


def command_group(help: str) -> typer.Typer:
    """A ``veilflow <group>`` of subcommands. Help is read as Markdown, so a docstring's
    wrapped lines join into one paragraph instead of breaking where the source does."""
    return typer.Typer(rich_markup_mode="markdown", help=help, no_args_is_help=True)
