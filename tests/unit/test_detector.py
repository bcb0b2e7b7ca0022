"""The project's trained detector: reproducible training on the train split only, versions
in the state folder, registration refused below the version in force, the version a scan
used named in the manifest's parameters, ``veilflow detect --model``.

Training here is tiny (a hundred texts, two epochs, a few seconds): it checks the machinery,
not the model's quality (benchmarks/detection_generalization.py does that)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from veilflow.corpus import generate
from veilflow.detect import model as detect_model
from veilflow.detect.model import SHIPPED_DIR, registry_root, resolve, version_of
from veilflow.detector import flow
from veilflow.detector.registry import (
    RegistrationRefused,
    decide,
    model_digest,
    save_candidate,
)
from veilflow.detector.training import TrainingConfig, config_from_dict, train, train_isolated
from veilflow.errors import PolicyError

TINY = TrainingConfig(texts=100, epochs=2, seed=11)


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("VEILFLOW_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


@pytest.fixture
def nothing_shipped(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    empty = tmp_path / "shipped"
    empty.mkdir()
    monkeypatch.setattr(detect_model, "SHIPPED_DIR", empty)
    return empty


def test_the_same_seed_trains_the_same_weights(tmp_path: Path) -> None:
    # Each in a process of its own, as training always runs (under a fixed string-hash
    # seed; the corpus once followed the interpreter's).
    docs = generate("train", TINY.texts, TINY.seed)
    a, stats = train_isolated(TINY, docs)
    b, _ = train_isolated(TINY, docs)
    other = TrainingConfig(texts=100, epochs=2, seed=12)
    c, _ = train_isolated(other, generate("train", other.texts, other.seed))
    for name, nlp in (("a", a), ("b", b), ("c", c)):
        nlp.to_disk(tmp_path / name)
    assert stats.texts == 100 and stats.labels > 100 and len(stats.losses) == 2
    assert model_digest(tmp_path / "a") == model_digest(tmp_path / "b")
    assert model_digest(tmp_path / "a") != model_digest(tmp_path / "c")


def test_the_shipped_weights_are_the_running_averages(tmp_path: Path) -> None:
    """Averaged weights are other weights than the last step's, from the same updates; a
    version recorded before the option existed reads as trained without it."""
    cfg = TrainingConfig(texts=40, epochs=1, seed=11)
    docs = generate("train", cfg.texts, cfg.seed)
    averaged, a = train(cfg, docs)
    last, b = train(dataclasses.replace(cfg, averages=False), docs)
    assert a.losses == b.losses
    averaged.to_disk(tmp_path / "averaged")
    last.to_disk(tmp_path / "last")
    assert model_digest(tmp_path / "averaged") != model_digest(tmp_path / "last")
    recorded = {k: v for k, v in cfg.as_dict().items() if k != "averages"}
    assert config_from_dict(recorded).averages is False
    assert config_from_dict(cfg.as_dict()).averages is True


def test_training_takes_the_train_split_only() -> None:
    with pytest.raises(ValueError, match="train split only"):
        train(TrainingConfig(texts=10, split="heldout"))
    with pytest.raises(ValueError, match="train split only"):
        train_isolated(TINY, generate("heldout", 5, 1))


def test_decide_refuses_a_candidate_below_the_version_in_force() -> None:
    def ev(f1: float, leak: float) -> dict[str, object]:
        return {"overall": {"overlap": {"f1": f1}, "leak_rate": leak}}

    assert decide(ev(0.5, 0.5), None, None).accepted
    assert decide(ev(0.90, 0.02), ev(0.90, 0.02), "v1").accepted
    assert decide(ev(0.91, 0.01), ev(0.90, 0.02), "v1").accepted
    lower = decide(ev(0.89, 0.01), ev(0.90, 0.02), "v1")
    assert not lower.accepted and "overlap F1" in lower.reason
    leakier = decide(ev(0.95, 0.03), ev(0.90, 0.02), "v1")
    assert not leakier.accepted and "leak rate" in leakier.reason


def test_unknown_and_malformed_versions_are_clear_errors(home: Path) -> None:
    assert resolve("none") is None
    with pytest.raises(PolicyError, match="neither registered"):
        resolve("det-s1-00000000")
    with pytest.raises(PolicyError, match="not a version name"):
        resolve("../../etc")


@pytest.mark.skipif(not any(SHIPPED_DIR.glob("*/report.json")), reason="no shipped version")
def test_a_fresh_installation_uses_the_shipped_version(home: Path) -> None:
    ref = resolve("current")
    assert ref is not None and ref.origin == "shipped"
    report = ref.report()
    assert report["corpus"]["split"] == "train"
    assert report["evaluation"]["data"]["split"] == "heldout"
    assert set(report["evaluation"]["per_entity"]["PERSON"]) >= {"exact", "overlap", "leak_rate"}
    assert model_digest(ref.model_path) == report["sha256"]  # the files are the ones scored
    # The artifact stays small enough to live in the repository.
    size = sum(p.stat().st_size for p in ref.path.rglob("*") if p.is_file())
    assert size <= 20 * 2**20


@pytest.mark.slow
def test_train_evaluate_register_and_refuse(home: Path, nothing_shipped: Path) -> None:
    """The DAG's four stages in-process: with nothing in force the first candidate is
    registered; a worse one is refused and stays a candidate with the reason."""
    flow.generate_corpus("run-1", TrainingConfig(texts=150, epochs=3, seed=3))
    corpus = (flow.run_dir("run-1") / flow.CORPUS_FILE).read_text().splitlines()
    assert len(corpus) == 150 and all(json.loads(x)["split"] == "train" for x in corpus)
    first = flow.train_candidate("run-1")["version"]
    scored = flow.evaluate_candidate(first, texts=60)
    assert scored["baseline"] is None and 0 <= scored["leak_rate"] <= 1
    assert flow.register_candidate(first)["registered"]
    assert (registry_root() / "CURRENT").read_text().strip() == first
    assert version_of("current") == first
    report = json.loads((registry_root() / first / "report.json").read_text())
    assert report["status"] == "registered"
    assert report["evaluation"]["data"]["split"] == "heldout"
    assert {"precision", "recall", "f1"} <= set(report["evaluation"]["overall"]["overlap"])

    # A candidate trained on almost nothing scores below the one in force.
    flow.generate_corpus("run-2", TrainingConfig(texts=50, epochs=1, seed=4))
    worse = flow.train_candidate("run-2")["version"]
    flow.evaluate_candidate(worse, texts=60)
    with pytest.raises(RegistrationRefused, match="not registered"):
        flow.register_candidate(worse)
    assert version_of("current") == first
    refused = json.loads((registry_root() / "candidates" / worse / "report.json").read_text())
    assert refused["status"] == "refused" and refused["baseline"]["version"] == first


def test_a_candidate_must_be_evaluated_before_it_is_registered(
    home: Path, nothing_shipped: Path
) -> None:
    nlp, _ = train(TrainingConfig(texts=30, epochs=1, seed=5))
    ref = save_candidate(nlp, {"training": TINY.as_dict()}, 5)
    with pytest.raises(RegistrationRefused, match="not been evaluated"):
        flow.register_candidate(ref.version)


def test_scrub_text_names_the_detector_version_in_its_parameters(
    home: Path, nothing_shipped: Path
) -> None:
    from veilflow.detect.scrub import ScrubText, ScrubTextConfig
    from veilflow.policy.detection import DetectionSettings
    from veilflow.transform.base import ColumnContext
    from veilflow.transform.keys import LocalKeyProvider

    nlp, _ = train(TrainingConfig(texts=30, epochs=1, seed=6))
    ref = save_candidate(nlp, {"training": TINY.as_dict()}, 6, registry_root())
    keys = LocalKeyProvider(bytes(32))

    def op(detector: str) -> ScrubText:
        config = ScrubTextConfig(detection=DetectionSettings(detector=detector))
        return ScrubText(config, ColumnContext("d", "note", keys))

    pinned = op(ref.version)
    assert pinned.params()["detector_version"] == ref.version
    assert f"detector={ref.version}" in pinned.describe()
    assert op("none").params()["detector_version"] is None
    assert op("current").params()["detector_version"] is None  # nothing in force
    (registry_root() / "CURRENT").write_text(ref.version)
    assert op("current").params()["detector_version"] == ref.version


def test_detect_model_picks_a_version(home: Path, nothing_shipped: Path, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from veilflow.cli import app

    nlp, _ = train(TrainingConfig(texts=30, epochs=1, seed=7))
    ref = save_candidate(nlp, {"training": TINY.as_dict()}, 7, registry_root())
    src, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    src.write_text(json.dumps({"text": "Call Ana Bell on 212-555-0147."}) + "\n")
    runner = CliRunner()
    done = runner.invoke(app, ["detect", "-i", str(src), "-o", str(out), "--model", ref.version])
    assert done.exit_code == 0, done.output
    assert f"detector {ref.version}" in done.output
    assert json.loads(out.read_text())["spans"]
    done = runner.invoke(app, ["detect", "-i", str(src), "-o", str(out), "--model", "none"])
    assert done.exit_code == 0 and "detector none" in done.output
    missing = runner.invoke(app, ["detect", "-i", str(src), "-o", str(out), "--model", "det-x"])
    assert missing.exit_code != 0
    assert isinstance(missing.exception, PolicyError) and "neither registered" in str(
        missing.exception
    )
