"""``veilflow budget``: a dataset's differential-privacy budget and what runs spent from it.

``set`` is an admin's act (the admin login; audited); ``show`` reads the ledger."""

from __future__ import annotations

import json
from typing import Annotated, Literal

import typer

from veilflow.commands import command_group
from veilflow.errors import VeilflowError

budget_app = command_group(
    "Differential-privacy budgets: set a dataset's total, show what was spent."
)


@budget_app.command("set")
def budget_set(
    dataset: Annotated[str, typer.Argument(help="The dataset (policy's `dataset:`).")],
    epsilon: Annotated[float, typer.Option(min=0.0, help="Total ε for all of its releases.")],
    delta: Annotated[
        float, typer.Option(min=0.0, max=0.001, help="Total δ (Gaussian releases).")
    ] = 0.0,
) -> None:
    """Set (or change) a dataset's total privacy budget (admins; audited). What runs already
    spent stays spent: lowering the total below it leaves nothing to spend."""
    from veilflow.privacy.budget import set_budget
    from veilflow.zones.db import connect

    with connect(autocommit=True, duty="admin") as conn:
        b = set_budget(conn, dataset, epsilon, delta)
    typer.echo(
        f"budget of {dataset}: ε {b.epsilon_total:g} (spent {b.epsilon_spent:g}, remaining"
        f" {b.epsilon_remaining:g}), δ {b.delta_total:g}"
    )


@budget_app.command("show")
def budget_show(
    dataset: Annotated[str, typer.Argument(help="The dataset.")],
    fmt: Annotated[
        Literal["text", "json"], typer.Option("--format", help="text or json.")
    ] = "text",
) -> None:
    """The dataset's budget, what remains, and each release every run spent it on."""
    from veilflow.privacy.budget import budget_of, ledger
    from veilflow.zones.db import connect

    with connect() as conn:
        b = budget_of(conn, dataset)
        spent = ledger(conn, dataset)
    if b is None:
        raise VeilflowError(
            f"dataset {dataset!r} has no privacy budget; an admin sets one with "
            f"`veilflow budget set {dataset} --epsilon E`"
        )
    if fmt == "json":
        typer.echo(json.dumps({**b.to_dict(), "spent": spent}, indent=2, default=str))
        return
    typer.echo(
        f"budget of {dataset}: ε {b.epsilon_total:g} total, {b.epsilon_spent:g} spent,"
        f" {b.epsilon_remaining:g} remaining; δ {b.delta_total:g} total,"
        f" {b.delta_spent:g} spent"
    )
    for s in spent:
        typer.echo(
            f"  {s['spent_at']:%Y-%m-%d %H:%M:%S}  ε {s['epsilon']:<6g} δ {s['delta']:<8g}"
            f" {s['statistic']:<9} {s['table']:<40} {s['run_id']}"
        )


def register(app: typer.Typer) -> None:
    """Add this area's commands to the root app."""
    app.add_typer(budget_app, name="budget")
