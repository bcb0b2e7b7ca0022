"""The training run's stages, as the ``veilflow_detector_training`` DAG and the CLI call them:

    generate_corpus ──► train_candidate ──► evaluate_candidate ──► register_candidate

Each stage reads what the one before wrote under the run folder
(``$VEILFLOW_HOME/detectors/runs/<run>/``) or the candidate's folder, and returns a small
dict of names and counts (what goes through XCom). The corpus is the project's synthetic
generator: no personal data is read or written.
"""

from __future__ import annotations

import json
import logging
import shutil
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from veilflow.corpus import DEFAULT_SEED, Doc, generate, split_report
from veilflow.detect.model import DetectorRef, registry_root
from veilflow.detector.evaluation import Evaluation, Score, leaks, rename, summarize
from veilflow.detector.registry import (
    RegistrationRefused,
    candidate,
    decide,
    in_force,
    promote,
    save_candidate,
    update_report,
)
from veilflow.detector.training import (
    TrainingConfig,
    TrainingStats,
    config_from_dict,
    read_docs,
    train_isolated,
    write_docs,
)

log = logging.getLogger(__name__)

#: Heldout texts a candidate and the version in force are scored on.
EVAL_TEXTS = 3000
CORPUS_FILE = "train.jsonl"


def run_dir(run: str) -> Path:
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in run)
    return registry_root() / "runs" / safe


def generate_corpus(run: str, cfg: TrainingConfig) -> dict[str, Any]:
    """Write ``cfg.texts`` labeled texts of the train split to the run folder."""
    folder = run_dir(run)
    folder.mkdir(parents=True, exist_ok=True)
    docs = generate("train", cfg.texts, cfg.seed)
    write_docs(folder / CORPUS_FILE, docs)
    (folder / "config.json").write_text(json.dumps(cfg.as_dict()), encoding="utf-8")
    labels = sum(len(d.labels) for d in docs)
    log.info("corpus: %d train texts, %d labels (seed %d)", len(docs), labels, cfg.seed)
    return {"run": run, "texts": len(docs), "labels": labels, "seed": cfg.seed}


def read_corpus(run: str) -> tuple[TrainingConfig, list[Doc]]:
    folder = run_dir(run)
    cfg = config_from_dict(json.loads((folder / "config.json").read_text(encoding="utf-8")))
    docs = read_docs(folder / CORPUS_FILE)
    if any(d.split != "train" for d in docs):
        raise ValueError("the detector is trained on the train split only")
    return cfg, docs


def train_candidate(run: str) -> dict[str, Any]:
    """Train on the run's corpus and save the result as a candidate version."""
    cfg, docs = read_corpus(run)
    ref, stats = _train(cfg, docs, None)
    return {"version": ref.version, "seconds": stats.seconds, "labels": stats.labels}


def _train(
    cfg: TrainingConfig, docs: list[Doc], root: Path | None
) -> tuple[DetectorRef, TrainingStats]:
    nlp, stats = train_isolated(cfg, docs)
    report: dict[str, Any] = {
        "training": cfg.as_dict(),
        "training_stats": asdict(stats),
        "corpus": {
            "generator": "veilflow.corpus",
            "split": "train",
            "texts": len(docs),
            "seed": cfg.seed,
            "sources": split_report("train").lines(),
        },
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    return save_candidate(nlp, report, cfg.seed, root), stats


def evaluate(
    ref: DetectorRef | None, docs: list[Doc], data: dict[str, Any] | None = None
) -> Evaluation:
    """Rules plus detector ``ref`` (None: rules only) on labeled ``docs``: P/R/F1 per entity
    and the leak rate after ``scrub_text`` with its defaults (its own two passes)."""
    import pandas as pd

    from veilflow.detect.scanner import Scanner
    from veilflow.detect.scrub import ScrubText
    from veilflow.policy.detection import DetectionSettings
    from veilflow.policy.operators import ScrubTextConfig
    from veilflow.transform.base import ChunkContext, ColumnContext
    from veilflow.transform.keys import LocalKeyProvider

    scanner = Scanner(DetectionSettings(detector="none"), detector=ref)
    texts = [d.text for d in docs]
    score = Score()
    for i in range(0, len(texts), 512):
        batch = scanner.scan(texts[i : i + 512])
        for doc, spans in zip(docs[i : i + 512], batch.spans, strict=True):
            score.add(doc, rename([(s.start, s.end, s.entity) for s in spans])[0])
    # Default scrub_text redacts with typed placeholders: no key material is used.
    op = ScrubText(ScrubTextConfig(), ColumnContext("corpus", "text", LocalKeyProvider(bytes(32))))
    op.use_scanner(scanner)
    outputs: list[str] = []
    for i in range(0, len(texts), 1000):
        part = texts[i : i + 1000]
        chunk = ChunkContext(frame=pd.DataFrame({"id": range(len(part))}), key_column="id")
        outputs.extend(op.apply(pd.Series(part, dtype=object), chunk).astype(object).tolist())
    return summarize(score, leaks(docs, outputs), data or {})


def heldout(texts: int = EVAL_TEXTS, seed: int = DEFAULT_SEED) -> tuple[list[Doc], dict[str, Any]]:
    docs = generate("heldout", texts, seed)
    data = {
        "generator": "veilflow.corpus",
        "split": "heldout",
        "texts": len(docs),
        "seed": seed,
        "sources": split_report("heldout").lines(),
    }
    return docs, data


def evaluate_candidate(
    version: str, texts: int = EVAL_TEXTS, seed: int = DEFAULT_SEED
) -> dict[str, Any]:
    """Score the candidate and the version in force on the same heldout texts; both go into
    the candidate's report."""
    ref = candidate(version)
    docs, data = heldout(texts, seed)
    cand = evaluate(ref, docs, data).as_dict()
    base_ref = in_force()
    base = evaluate(base_ref, docs, data).as_dict() if base_ref is not None else None
    update_report(
        ref,
        evaluation=cand,
        baseline={"version": base_ref.version, "evaluation": base} if base_ref else None,
    )
    return {
        "version": version,
        "f1": cand["overall"]["overlap"]["f1"],
        "leak_rate": cand["overall"]["leak_rate"],
        "baseline": base_ref.version if base_ref else None,
    }


def register_candidate(version: str) -> dict[str, Any]:
    """Register the candidate and put it in force, unless it scored below the version in
    force (``RegistrationRefused``; the candidate stays, its report saying why)."""
    ref = candidate(version)
    report = ref.report()
    if "evaluation" not in report:
        raise RegistrationRefused(f"candidate {version} has not been evaluated")
    base = report.get("baseline") or None
    now = in_force()
    if base is not None and (now is None or now.version != base["version"]):
        raise RegistrationRefused(
            f"the version in force changed since {version} was evaluated; evaluate it again"
        )
    decision = decide(
        report["evaluation"],
        base["evaluation"] if base else None,
        base["version"] if base else None,
    )
    update_report(
        ref, status="registered" if decision.accepted else "refused", decision=asdict(decision)
    )
    if not decision.accepted:
        raise RegistrationRefused(f"detector {version} not registered: {decision.reason}")
    promote(ref)
    return {"version": version, "registered": True, "reason": decision.reason}


def train_and_register(
    cfg: TrainingConfig, run: str, eval_texts: int = EVAL_TEXTS
) -> dict[str, Any]:
    """All four stages in-process (``veilflow detector train``)."""
    generate_corpus(run, cfg)
    version = train_candidate(run)["version"]
    evaluate_candidate(version, eval_texts)
    return register_candidate(version)


def build_shipped(into: Path, cfg: TrainingConfig, eval_texts: int = EVAL_TEXTS) -> DetectorRef:
    """Train the version shipped with the code (``make detector``): trained from ``cfg``'s
    seed on the train split, scored on heldout beside the rules alone, written to ``into``
    in place of any version there."""
    docs = generate("train", cfg.texts, cfg.seed)
    ref, _ = _train(cfg, docs, into)
    for old in into.iterdir():
        if old.is_dir() and old.name != ref.version and not old.name.startswith("."):
            shutil.rmtree(old)
    rescore(ref, eval_texts)
    return DetectorRef(ref.version, ref.path, ref.entities, "shipped")


def rescore(ref: DetectorRef, eval_texts: int = EVAL_TEXTS) -> dict[str, Any]:
    """Score a shipped version again, beside the rules alone, on the heldout split and write
    the figures into its report (after a change to how the scanner uses it)."""
    held, data = heldout(eval_texts)
    return update_report(
        ref,
        status="shipped",
        evaluation=evaluate(ref, held, data).as_dict(),
        baseline={"version": None, "evaluation": evaluate(None, held, data).as_dict()},
    )
