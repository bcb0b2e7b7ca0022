"""Detector versions in the state folder: candidates, registration, the version in force.

    $VEILFLOW_HOME/detectors/
      CURRENT                      the version in force (``detect.model.current_version``)
      <version>/model/             a registered version's spaCy pipeline
      <version>/report.json        how it was trained and how it scored
      candidates/<version>/        trained, not (yet) registered; a refused one stays here
                                   with the reason in its report

A version name is ``det-s<seed>-<first 8 hex of the model's SHA-256>``: the same seed, code
and library versions give the same weights and so the same name. Registration compares the
candidate with the version in force on the same heldout texts and refuses a candidate that
scores below it (``decide``).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from veilflow.detect.model import (
    CURRENT_FILE,
    MODEL_DIR,
    REPORT_FILE,
    DetectorRef,
    current_version,
    registered,
    registry_root,
    resolve,
    shipped,
)
from veilflow.errors import VeilflowError

log = logging.getLogger(__name__)

#: How much lower a candidate's overlap F1 may be, or higher its leak rate, and still count
#: as not below the version in force (evaluation is deterministic: this is rounding only).
TOLERANCE = 1e-4


class RegistrationRefused(VeilflowError):
    """A candidate detector scored below the version in force."""


def candidates_root() -> Path:
    return registry_root() / "candidates"


def model_digest(model_dir: Path) -> str:
    """SHA-256 over a spaCy pipeline folder's files (names and bytes, in sorted order)."""
    h = hashlib.sha256()
    for p in sorted(model_dir.rglob("*")):
        if p.is_file():
            h.update(p.relative_to(model_dir).as_posix().encode())
            h.update(b"\0")
            h.update(p.read_bytes())
    return h.hexdigest()


def _write_json(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def save_candidate(
    nlp: Any, report: dict[str, Any], seed: int, root: Path | None = None
) -> DetectorRef:
    """Write a trained pipeline as a candidate (in ``root``, default the candidates folder);
    its name comes from its bytes and seed."""
    root = root or candidates_root()
    root.mkdir(parents=True, exist_ok=True)
    staging = root / f".staging-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    nlp.to_disk(staging / MODEL_DIR)
    digest = model_digest(staging / MODEL_DIR)
    version = f"det-s{seed}-{digest[:8]}"
    report = {**report, "version": version, "sha256": digest, "status": "candidate"}
    _write_json(staging / REPORT_FILE, report)
    final = root / version
    shutil.rmtree(final, ignore_errors=True)
    os.replace(staging, final)
    log.info("candidate detector %s saved", version)
    return DetectorRef(version, final, tuple(report["training"]["entities"]), "candidate")


def candidate(version: str) -> DetectorRef:
    path = candidates_root() / version
    if not (path / REPORT_FILE).is_file():
        raise VeilflowError(f"no candidate detector {version!r} in {candidates_root()}")
    report = json.loads((path / REPORT_FILE).read_text(encoding="utf-8"))
    return DetectorRef(version, path, tuple(report["training"]["entities"]), "candidate")


def update_report(ref: DetectorRef, **fields: Any) -> dict[str, Any]:
    report = {**ref.report(), **fields}
    _write_json(ref.path / REPORT_FILE, report)
    return report


@dataclass(frozen=True)
class Decision:
    """Whether a candidate may be registered, and why (figures only)."""

    accepted: bool
    reason: str
    candidate: dict[str, float]
    baseline: dict[str, float] | None
    baseline_version: str | None


def _headline(evaluation: dict[str, Any]) -> dict[str, float]:
    overall = evaluation["overall"]
    return {"f1": float(overall["overlap"]["f1"]), "leak_rate": float(overall["leak_rate"])}


def decide(cand: dict[str, Any], base: dict[str, Any] | None, base_version: str | None) -> Decision:
    """A candidate is below the version in force when, on the same heldout texts, its
    overlap F1 is lower or its leak rate is higher. With no version in force it is accepted."""
    c = _headline(cand)
    if base is None:
        return Decision(True, "no detector in force", c, None, None)
    b = _headline(base)
    if c["f1"] < b["f1"] - TOLERANCE:
        why = f"overlap F1 {c['f1']:.4f} is below {base_version}'s {b['f1']:.4f}"
        return Decision(False, why, c, b, base_version)
    if c["leak_rate"] > b["leak_rate"] + TOLERANCE:
        why = f"leak rate {c['leak_rate']:.4f} is above {base_version}'s {b['leak_rate']:.4f}"
        return Decision(False, why, c, b, base_version)
    why = (
        f"overlap F1 {c['f1']:.4f} (in force {b['f1']:.4f}), leak rate {c['leak_rate']:.4f} "
        f"(in force {b['leak_rate']:.4f})"
    )
    return Decision(True, why, c, b, base_version)


def promote(ref: DetectorRef) -> DetectorRef:
    """Move a candidate into the registry and make it the version in force."""
    root = registry_root()
    target = root / ref.version
    if target.exists():
        shutil.rmtree(target)
    os.replace(ref.path, target)
    pointer = root / CURRENT_FILE
    tmp = pointer.with_suffix(".tmp")
    tmp.write_text(ref.version + "\n", encoding="utf-8")
    os.replace(tmp, pointer)
    log.info("detector %s registered and in force", ref.version)
    return DetectorRef(ref.version, target, ref.entities, "registered")


def use(version: str) -> DetectorRef:
    """Put a registered or shipped version in force (a rollback); no evaluation."""
    ref = resolve(version)
    if ref is None:
        raise VeilflowError("'none' is not a version; pin detection.detector: none instead")
    root = registry_root()
    root.mkdir(parents=True, exist_ok=True)
    pointer = root / CURRENT_FILE
    pointer.write_text(ref.version + "\n", encoding="utf-8")
    return ref


def in_force() -> DetectorRef | None:
    version = current_version()
    return resolve(version) if version else None


def versions() -> list[tuple[DetectorRef, bool]]:
    """Every shipped and registered version, oldest first, with whether it is in force."""
    now = current_version()
    seen: dict[str, DetectorRef] = {}
    for ref in shipped() + registered():
        seen[ref.version] = ref
    return [(r, r.version == now) for r in seen.values()]


__all__ = [
    "MODEL_DIR",
    "Decision",
    "RegistrationRefused",
    "candidate",
    "decide",
    "in_force",
    "model_digest",
    "promote",
    "save_candidate",
    "update_report",
    "use",
    "versions",
]
