"""`veilflow detector` commands: train, evaluate, register, list and put in force the
project's trained detector. The ``veilflow_detector_training`` DAG runs the same stages."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer

from veilflow.commands import command_group

detector_app = command_group(
    "The project's trained detector: versions, training, evaluation on the heldout split."
)


def _fmt(x: Any) -> str:
    return "    -" if x is None else f"{x:.3f}"


@detector_app.command("list")
def list_versions() -> None:
    """Every version (shipped with the code or registered here) and the one in force."""
    from veilflow.detector.registry import versions

    rows = versions()
    if not rows:
        typer.echo("no detector version: scans use the rules and spaCy's stock NER only")
        return
    for ref, now in rows:
        report = ref.report()
        overall = (report.get("evaluation") or {}).get("overall") or {}
        f1 = (overall.get("overlap") or {}).get("f1")
        typer.echo(
            f"{'*' if now else ' '} {ref.version:36s} {ref.origin:10s} "
            f"heldout F1 {_fmt(f1)}  leak {_fmt(overall.get('leak_rate'))}  "
            f"entities {','.join(ref.entities)}"
        )


@detector_app.command("show")
def show(
    version: Annotated[str, typer.Argument(help="A version, or `current`.")] = "current",
) -> None:
    """A version's report: how it was trained, P/R/F1 and leak rate per entity (JSON)."""
    from veilflow.detect.model import resolve

    ref = resolve(version)
    if ref is None:
        typer.echo("no detector in force", err=True)
        raise typer.Exit(1)
    typer.echo(json.dumps(ref.report(), indent=2, sort_keys=True))


@detector_app.command("train")
def train_cmd(
    texts: Annotated[int, typer.Option(min=50, help="Train-split texts to learn from.")] = 8000,
    seed: Annotated[int, typer.Option(help="Seed of the corpus and of training.")] = 20261204,
    epochs: Annotated[int, typer.Option(min=1)] = 10,
    eval_texts: Annotated[int, typer.Option(min=50, help="Heldout texts scored.")] = 3000,
    register: Annotated[
        bool, typer.Option(help="Register it when it scores at least as well as the one in force.")
    ] = True,
) -> None:
    """Generate the train corpus, train a candidate, score it and the version in force on
    the heldout split, and register it unless it scores below (exit 3 when refused)."""
    from veilflow.detector import flow
    from veilflow.detector.training import TrainingConfig

    cfg = TrainingConfig(texts=texts, seed=seed, epochs=epochs)
    run = f"cli-{seed}-{texts}-{epochs}"
    flow.generate_corpus(run, cfg)
    trained = flow.train_candidate(run)
    typer.echo(f"trained candidate {trained['version']} in {trained['seconds']:.0f} s", err=True)
    scored = flow.evaluate_candidate(trained["version"], eval_texts)
    typer.echo(
        f"heldout: overlap F1 {scored['f1']:.3f}, leak rate {scored['leak_rate']:.2%}"
        + (f" (in force: {scored['baseline']})" if scored["baseline"] else ""),
        err=True,
    )
    if register:
        done = flow.register_candidate(trained["version"])
        typer.echo(f"registered {done['version']}: {done['reason']}")
    else:
        typer.echo(trained["version"])


@detector_app.command("register")
def register_cmd(version: Annotated[str, typer.Argument(help="A candidate version.")]) -> None:
    """Register an evaluated candidate, unless it scored below the version in force."""
    from veilflow.detector import flow

    done = flow.register_candidate(version)
    typer.echo(f"registered {done['version']}: {done['reason']}")


@detector_app.command("use")
def use_cmd(
    version: Annotated[str, typer.Argument(help="A registered or shipped version.")],
) -> None:
    """Put an earlier version back in force (no evaluation: a deliberate rollback)."""
    from veilflow.detector.registry import use

    ref = use(version)
    typer.echo(f"{ref.version} is in force")


@detector_app.command("build")
def build_cmd(
    into: Annotated[str, typer.Option(help="Folder of the shipped version.")] = "",
    texts: Annotated[int, typer.Option(min=50)] = 8000,
    seed: Annotated[int, typer.Option()] = 20261204,
    epochs: Annotated[int, typer.Option(min=1)] = 10,
    rescore_only: Annotated[
        bool,
        typer.Option(
            "--rescore-only",
            help="Do not train: score the shipped version again and rewrite its report.",
        ),
    ] = False,
) -> None:
    """Rebuild the version shipped with the code from its seed (`make detector`)."""
    from pathlib import Path

    from veilflow.detect.model import SHIPPED_DIR
    from veilflow.detector.flow import build_shipped
    from veilflow.detector.training import TrainingConfig

    folder = Path(into) if into else SHIPPED_DIR
    folder.mkdir(parents=True, exist_ok=True)
    if rescore_only:
        from veilflow.detect.model import shipped
        from veilflow.detector.flow import rescore

        for ref in shipped():
            overall = rescore(ref)["evaluation"]["overall"]
            typer.echo(f"{ref.version}: heldout F1 {overall['overlap']['f1']:.3f}")
        return
    ref = build_shipped(folder, TrainingConfig(texts=texts, seed=seed, epochs=epochs))
    typer.echo(f"built {ref.version} in {ref.path}")


def register(app: typer.Typer) -> None:
    app.add_typer(detector_app, name="detector")
