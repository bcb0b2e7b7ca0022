"""`veilflow` commands for the validate area: ``validate`` (the gate on a staged candidate) and
``risk`` (k-anonymity, l-diversity, t-closeness of any table or file a user may read).

Neither prints a value of the data: the gate's report holds counts and thresholds, the risk
report class sizes.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any, Literal

import typer

from veilflow.commands import policy_file
from veilflow.errors import ValidationFailed, VeilflowError

_FILE_SUFFIXES = (".csv", ".tsv", ".csv.gz", ".parquet", ".pq")
#: Class-size buckets for the text report when there are many distinct sizes.
_BUCKETS = ((1, 1), (2, 2), (3, 4), (5, 9), (10, 19), (20, 49), (50, 99), (100, 999), (1000, None))


def _short(value: Any, width: int = 36) -> str:
    text = json.dumps(value, default=str) if isinstance(value, list | dict) else str(value)
    return text if len(text) <= width else text[: width - 1] + "…"


def format_report(report: dict[str, Any]) -> str:
    """The gate's report as a table: one line per check, failures first."""
    checks = sorted(report["checks"], key=lambda c: (c["passed"], c["name"], c["column"] or ""))
    lines = [f"{'check':24} {'column':16} {'result':6} {'observed':>14}  threshold"]
    for c in checks:
        lines.append(
            f"{c['name']:24} {(c['column'] or '-'):16} "
            f"{'pass' if c['passed'] else 'FAIL':6} {_short(c['observed'], 14):>14}  "
            f"{_short(c['threshold'])}"
        )
    verdict = "passed" if report["passed"] else "FAILED"
    lines.append(
        f"gate {verdict}: {sum(not c['passed'] for c in checks)} of {len(checks)} "
        f"check(s) failed; {report.get('suppressed_rows', 0)} row(s) suppressed"
    )
    if report.get("data_docs"):
        lines.append(f"data docs: {report['data_docs']}")
    return "\n".join(lines)


def _latest_candidate_run(dataset: str) -> str:
    from veilflow.zones.db import connect
    from veilflow.zones.run_tables import RunTables, table_exists
    from veilflow.zones.runs import running_runs

    with connect() as conn:
        for run_id in running_runs(conn, dataset):
            if table_exists(conn, "staging", RunTables(dataset, run_id).candidate_name):
                return str(run_id)
    raise VeilflowError(
        f"no candidate of {dataset} is waiting for the gate; stage one with "
        "`veilflow run` (or a DAG run) or name it with --run"
    )


def validate_cmd(
    policy: Annotated[str, typer.Argument(help="Policy file or dataset name.")],
    run: Annotated[
        str | None, typer.Option("--run", help="Run id (default: the latest staged candidate).")
    ] = None,
    fmt: Annotated[
        Literal["text", "json"], typer.Option("--format", help="text or json.")
    ] = "text",
) -> None:
    """Run the validation gate alone on a staged candidate, as the DAG's validate task does:
    on failure the candidate is quarantined with its reasons and nothing is published."""
    from veilflow.pipeline.stages import validate
    from veilflow.policy.loader import load_policy

    pol = load_policy(policy_file(policy))
    run_id = run or _latest_candidate_run(pol.dataset)
    try:
        say = (lambda m: typer.echo(f"  {m}", err=True)) if fmt == "text" else None
        report = validate(pol, run_id, progress=say).to_dict()
    except ValidationFailed as exc:
        if fmt == "json":
            typer.echo(
                json.dumps(
                    {"passed": False, "run_id": run_id, "reasons": exc.reasons},
                    default=str,
                    indent=2,
                )
            )
        else:
            for r in exc.reasons:
                typer.echo(
                    f"FAIL {r['check']}{'[' + str(r['column']) + ']' if r['column'] else ''}"
                    f": observed {_short(r['observed'])}, threshold "
                    f"{_short(r['threshold'])}"
                )
        raise
    if fmt == "json":
        typer.echo(json.dumps({"run_id": run_id, **report}, default=str, indent=2))
    else:
        typer.echo(f"run {run_id}")
        typer.echo(format_report(report))


def size_distribution(class_sizes: dict[int, int]) -> list[tuple[str, int, int]]:
    """(label, classes, rows) per class size, bucketed when there are many sizes."""
    if len(class_sizes) <= 12:
        return [(str(s), c, s * c) for s, c in sorted(class_sizes.items())]
    out = []
    for lo, hi in _BUCKETS:
        sizes = {s: c for s, c in class_sizes.items() if s >= lo and (hi is None or s <= hi)}
        if sizes:
            label = str(lo) if lo == hi else (f"{lo}-{hi}" if hi is not None else f"{lo}+")
            out.append((label, sum(sizes.values()), sum(s * c for s, c in sizes.items())))
    return out


def risk_cmd(
    target: Annotated[
        str,
        typer.Argument(
            help="schema.table, or a .csv/.tsv/.parquet file; or `history` followed by a dataset."
        ),
    ],
    dataset: Annotated[
        str | None, typer.Argument(help="With `history`: the dataset whose trend to print.")
    ] = None,
    qi: Annotated[
        str | None, typer.Option("--qi", help="Quasi-identifiers, comma separated.")
    ] = None,
    sensitive: Annotated[str | None, typer.Option(help="Sensitive column (for l and t).")] = None,
    distance: Annotated[
        Literal["auto", "equal", "ordered"],
        typer.Option(help="t-closeness ground distance; auto: ordered for numbers and dates."),
    ] = "auto",
    fmt: Annotated[
        Literal["text", "json"], typer.Option("--format", help="text or json.")
    ] = "text",
) -> None:
    """k-anonymity, distinct l-diversity and t-closeness (Earth Mover's Distance) of a table
    or file on the given quasi-identifiers, and the sizes of its equivalence classes.
    `veilflow risk history DATASET` prints the dataset's risk from run to run instead."""
    if target == "history" and not Path(target).exists():
        from veilflow.commands.risk_history import print_history

        if not dataset:
            raise VeilflowError("risk history needs a dataset: veilflow risk history DATASET")
        print_history(dataset, fmt)
        return
    from veilflow.validate.file_risk import frame_risk, read_table_file
    from veilflow.validate.privacy import table_risk

    if dataset is not None:
        raise VeilflowError(f"unexpected argument {dataset!r}; the table is {target!r}")
    columns = [c.strip() for c in (qi or "").split(",") if c.strip()]
    if not columns:
        raise VeilflowError("--qi needs at least one column")
    path = Path(target)
    if target.lower().endswith(_FILE_SUFFIXES) or path.exists():
        if not path.exists():
            raise VeilflowError(f"file {target} does not exist")
        frame = read_table_file(str(path), [*columns, *([sensitive] if sensitive else [])])
        metrics = frame_risk(frame, columns, sensitive, distance=distance)
    else:
        from veilflow.zones.db import connect

        with connect() as conn:
            metrics = table_risk(conn, target, columns, sensitive, distance=distance)
    data = metrics.to_dict()
    if fmt == "json":
        typer.echo(json.dumps({"target": target, **data}, indent=2))
        return
    typer.echo(
        f"{target}: {metrics.rows:,} rows in {metrics.classes:,} equivalence classes "
        f"on {', '.join(columns)}"
    )
    typer.echo(
        f"k = {metrics.k}  (k-anonymity: every row shares its quasi-identifiers with "
        f"at least {max(0, metrics.k - 1)} other row(s))"
    )
    if metrics.l is not None:
        typer.echo(f"l = {metrics.l}  (distinct values of {sensitive} in the least diverse class)")
    if metrics.t is not None:
        typer.echo(
            f"t = {metrics.t:.4f}  (largest Earth Mover's Distance from the table's "
            f"distribution, {metrics.distance} distance)"
        )
    typer.echo(f"{'class size':>12} {'classes':>10} {'rows':>12}")
    for label, classes, rows in size_distribution(metrics.class_sizes):
        typer.echo(f"{label:>12} {classes:>10,} {rows:>12,}")


def register(app: typer.Typer) -> None:
    """Add this area's commands to the root app."""
    app.command("validate")(validate_cmd)
    app.command("risk")(risk_cmd)
