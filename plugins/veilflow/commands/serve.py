"""`veilflow serve` (the scrub API) and `veilflow api token ...` (its tokens).

See docs/scrub-api.md for the API, and ``veilflow.serve`` for how it works."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any

import typer

from veilflow.commands import command_group
from veilflow.errors import VeilflowError

api_app = command_group("The scrub API's tokens (`veilflow serve`).")
token_app = command_group(
    "Tokens of the scrub API: one per calling service, scoped to one dataset's free-text "
    "column. Admins issue and revoke; admins and auditors list. Audited."
)
api_app.add_typer(token_app, name="token")


@token_app.command("issue")
def token_issue(
    name: Annotated[str, typer.Argument(help="The calling service, e.g. `chat-frontend`.")],
    dataset: Annotated[str, typer.Option(help="The dataset whose policy applies.")],
    out: Annotated[
        Path,
        typer.Option(help="A new file (0600) the token is written to; it is shown nowhere else."),
    ],
    column: Annotated[
        str | None,
        typer.Option(help="Its scrub_text column (default: the policy's only one)."),
    ] = None,
    rate: Annotated[int, typer.Option(help="Requests per second this token may make.")] = 100,
) -> None:
    """Issue a token for a service that calls the scrub API (admins; audited)."""
    from veilflow.commands.vault import _connect
    from veilflow.config import settings
    from veilflow.serve.scrubber import column_for, policies_by_dataset
    from veilflow.serve.tokens import issue

    policy = policies_by_dataset(settings().policies_dir).get(dataset)
    if policy is None:
        raise VeilflowError(
            f"no usable policy for dataset {dataset!r} in {settings().policies_dir}"
        )
    col = column_for(policy, column)
    with _connect("admin") as conn:
        issue(conn, name=name, dataset=dataset, column=col, rate_per_second=rate, out=out)
    typer.echo(f"issued token {name} for {dataset}.{col} at {rate}/s; written to {out} (0600)")


@token_app.command("revoke")
def token_revoke(name: Annotated[str, typer.Argument(help="The token's name.")]) -> None:
    """Revoke a token (admins; audited). A running service stops accepting it within its
    token cache time (30 s by default)."""
    from veilflow.commands.vault import _connect
    from veilflow.serve.tokens import revoke

    with _connect("admin") as conn:
        done = revoke(conn, name)
    if not done:
        raise VeilflowError(f"no live token named {name!r}")
    typer.echo(f"revoked token {name}")


@token_app.command("list")
def token_list() -> None:
    """Every token, live or revoked: name, scope, rate, who issued it (admins, auditors)."""
    from veilflow.commands.vault import _connect
    from veilflow.serve.tokens import list_tokens

    with _connect("admin") as conn:
        rows = list_tokens(conn)
    if not rows:
        typer.echo("no API tokens")
        return
    typer.echo(f"{'name':24} {'dataset.column':28} {'rate/s':>7}  state    issued by")
    for t in rows:
        typer.echo(
            f"{t.name:24} {t.dataset + '.' + t.column:28} {t.rate_per_second:>7}  "
            f"{t.state:8} {t.created_by} {t.created_at:%Y-%m-%d %H:%M}"
        )


def serve_cmd(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8088,
    workers: Annotated[int, typer.Option(help="Worker processes (default: one per CPU core).")] = 0,
    max_bytes: Annotated[int, typer.Option(help="Largest request body; larger gets 413.")] = 65536,
    max_texts: Annotated[int, typer.Option(help="Most texts in one request.")] = 100,
    audit_seconds: Annotated[
        float, typer.Option(help="How often request counts go to the audit log.")
    ] = 60.0,
    access_log: Annotated[
        bool, typer.Option(help="Log each request's method, path and status (never a body).")
    ] = False,
) -> None:
    """Start the scrub API: POST /scrub and /detect with a bearer token, GET /health.

    It runs as the pipeline's login (the vault's data keys for tokens and surrogates) with
    the policies of the policies folder, and writes what each policy's `scrub_text` column
    writes in a run. Stop it with Ctrl-C; its last counts go to the audit log on the way out.
    """
    import uvicorn

    from veilflow.config import settings
    from veilflow.serve.app import ServeConfig
    from veilflow.serve.scrubber import policies_by_dataset, scrub_columns
    from veilflow.serve.workers import reuse_port_available, run_workers
    from veilflow.zones.db import connect

    n = workers or (os.cpu_count() or 1)
    config = ServeConfig(
        policies_dir=settings().policies_dir,
        max_bytes=max_bytes,
        max_texts=max_texts,
        processes=n,
        audit_seconds=audit_seconds,
    )
    servable = [d for d, p in policies_by_dataset(config.policies_dir).items() if scrub_columns(p)]
    if not servable:
        raise VeilflowError(f"no policy in {config.policies_dir} has a scrub_text column to serve")
    with connect(duty="pipeline") as conn:  # fail here, clearly, not in every worker
        conn.execute("SELECT 1")
    os.environ.update(config.to_env())
    typer.echo(
        f"scrub API on http://{host}:{port} ({n} worker process(es)); datasets: "
        + ", ".join(sorted(servable)),
        err=True,
    )
    app = "veilflow.serve.app:app_from_env"
    options: dict[str, Any] = dict(
        factory=True, host=host, port=port, workers=n, access_log=access_log, log_level="info"
    )
    if n > 1 and reuse_port_available():
        # One listening socket per worker, so connections spread over the workers.
        run_workers(uvicorn.Config(app, **options), n)
    else:
        uvicorn.run(app, **options)


def register(app: typer.Typer) -> None:
    """Add this area's commands to the root app."""
    app.add_typer(api_app, name="api")
    app.command("serve")(serve_cmd)
