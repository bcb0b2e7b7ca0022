"""`veilflow erase`: a data subject's erasure request, and applying it (see
``veilflow.vault.erasure``)."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from veilflow.errors import VeilflowError
from veilflow.policy.dataset import DatasetPolicy
from veilflow.policy.model import Policy


def _policy(dataset: str) -> Policy | DatasetPolicy:
    """The policy of ``dataset``: one table's, or a dataset's of several tables."""
    from veilflow.config import settings
    from veilflow.policy.loader import load_policy_folder

    folder = settings().policies_dir
    loaded = load_policy_folder(folder)
    found: list[Policy | DatasetPolicy] = [*loaded.policies.values(), *loaded.datasets.values()]
    for policy in found:
        if policy.dataset == dataset:
            return policy
    raise VeilflowError(f"no usable policy for dataset {dataset!r} in {folder}")


def erase_cmd(
    dataset: Annotated[str, typer.Option(help="The dataset the subject's rows are in.")],
    subject: Annotated[
        str | None,
        typer.Option(
            help="The subject's source key, or `-` to read it from standard input (keeps it "
            "out of the shell's history and the process list)."
        ),
    ] = None,
    reason: Annotated[
        str | None, typer.Option(help="Why (at least 8 characters; audited as the purpose).")
    ] = None,
    apply: Annotated[
        bool,
        typer.Option(
            "--apply",
            help="Apply the dataset's pending requests now, as the pipeline's login, instead "
            "of at its next publish.",
        ),
    ] = False,
) -> None:
    """Erase a data subject from the anonymized zone and the quarantine (stewards request;
    the pipeline applies; audited). For a dataset of several tables, the subject's key is
    its key in the dataset's subject table, and its rows leave every table (the tables
    below by the foreign-key token).

    `veilflow erase --dataset D --subject - --reason "..."` records the request: the subject
    is named by the tokens its key has in the published tables, never by the key. The next
    publish of D leaves the subject's rows out and purges the quarantined candidates;
    `veilflow erase --dataset D --apply` does it at once and prints what was removed.
    """
    from veilflow.zones.db import connect

    policy = _policy(dataset)
    if apply:
        if subject is not None or reason is not None:
            raise VeilflowError("--apply takes only --dataset: it applies pending requests")
        from veilflow.pipeline.erased import apply_erasures
        from veilflow.pipeline.erased_dataset import apply_dataset_erasures

        with connect(duty="pipeline", autocommit=True) as conn:
            reports = (
                apply_dataset_erasures(conn, policy)
                if isinstance(policy, DatasetPolicy)
                else apply_erasures(conn, policy)
            )
        if not reports:
            typer.echo(f"no pending erasure request for {dataset}")
        for r in reports:
            tables = ", ".join(f"{t} {n}" for t, n in r.removed.items())
            typer.echo(
                f"request {r.request}: {r.total} row(s) removed ({tables}); "
                f"{r.left} left in any table of {dataset}"
                + (
                    f"; {r.suppressed} other row(s) suppressed to keep k (classes it left below k,"
                    " and the rows that refer to them)"
                    if r.suppressed
                    else ""
                )
            )
        return
    if subject is None or reason is None:
        raise VeilflowError("give --subject and --reason to request an erasure, or --apply")
    key = sys.stdin.readline().rstrip("\n") if subject == "-" else subject
    if not key:
        raise VeilflowError("the subject's key is empty")
    from veilflow.vault.erasure import request
    from veilflow.vault.erasure_dataset import request_dataset
    from veilflow.vault.master import default_master_key
    from veilflow.vault.provider import VaultKeyProvider

    with connect(duty="steward", autocommit=True) as conn:
        keys = VaultKeyProvider(
            default_master_key(),
            lambda: connect(duty="steward", autocommit=True),
            operation="reidentify",
            purpose=reason,
        )
        request_id = (
            request_dataset(conn, policy, key, reason, keys)
            if isinstance(policy, DatasetPolicy)
            else request(conn, policy, key, reason, keys)
        )
    typer.echo(
        f"erasure request {request_id} recorded for {dataset} (the key is not stored); "
        f"applied at its next publish, or now with: veilflow erase --dataset {dataset} --apply"
    )


def register(app: typer.Typer) -> None:
    """Add this area's commands to the root app."""
    app.command("erase")(erase_cmd)
