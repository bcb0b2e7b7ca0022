"""The project's trained detector as a scan uses it: which version, where it lies, loading it.

A version is a folder holding a spaCy pipeline (``model/``) and ``report.json`` (how it was
trained and how it scored on the heldout split). Versions live in two places:

- ``$VEILFLOW_HOME/detectors/<version>/``: trained and registered on this installation
  (``veilflow detector train`` / the ``veilflow_detector_training`` DAG); the file
  ``$VEILFLOW_HOME/detectors/CURRENT`` names the one in force;
- ``detect/models/<version>/`` in this package: the version shipped with the code, used
  while no version is registered (``SHIPPED``), so a fresh checkout detects the same way
  offline without training anything.

``detection.detector`` in a policy (``veilflow detect --model``) picks one: ``current``
(the default), a version, or ``none`` (rules and the stock spaCy NER only). Resolving a
name reads two small files; loading happens once per process and version.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from veilflow.config import settings
from veilflow.detect.matmul import Matmul, use_matmul
from veilflow.errors import PolicyError

if TYPE_CHECKING:
    from spacy.language import Language

log = logging.getLogger(__name__)

#: The folder of the versions shipped with the code.
SHIPPED_DIR = Path(__file__).with_name("models")
CURRENT_FILE = "CURRENT"
REPORT_FILE = "report.json"
MODEL_DIR = "model"
#: A version name: letters, digits, dots and dashes (it names a folder).
VERSION_RX = re.compile(r"^[A-Za-z0-9][A-Za-z0-9.-]{0,63}$")
#: Score of a detector finding: below checksummed and context-named values, at the stock NER's.
MODEL_SCORE = 0.85


def registry_root() -> Path:
    """Where this installation keeps its detector versions."""
    return settings().home / "detectors"


@dataclass(frozen=True)
class DetectorRef:
    """One detector version: its name, its folder, what it finds, where it came from."""

    version: str
    path: Path
    entities: tuple[str, ...]
    origin: str  # "registered" or "shipped"

    @property
    def model_path(self) -> Path:
        return self.path / MODEL_DIR

    def report(self) -> dict[str, Any]:
        data: dict[str, Any] = json.loads((self.path / REPORT_FILE).read_text(encoding="utf-8"))
        return data


def _ref(path: Path, origin: str) -> DetectorRef | None:
    report = path / REPORT_FILE
    if not (path / MODEL_DIR / "meta.json").is_file() or not report.is_file():
        return None
    data = json.loads(report.read_text(encoding="utf-8"))
    return DetectorRef(path.name, path, tuple(data.get("training", {}).get("entities", ())), origin)


def _versions(root: Path, origin: str) -> list[DetectorRef]:
    """The versions in ``root``, oldest first (by the ``created`` time in their report)."""
    if not root.is_dir():
        return []
    refs = [r for p in root.iterdir() if p.is_dir() and (r := _ref(p, origin)) is not None]
    return sorted(refs, key=lambda r: (str(r.report().get("created", "")), r.version))


def shipped() -> list[DetectorRef]:
    """The versions shipped with the code, oldest first."""
    return _versions(SHIPPED_DIR, "shipped")


def registered() -> list[DetectorRef]:
    """The versions registered on this installation, oldest first."""
    return _versions(registry_root(), "registered")


def current_version() -> str | None:
    """The version ``CURRENT`` names, else the newest shipped one, else None."""
    pointer = registry_root() / CURRENT_FILE
    if pointer.is_file():
        name = pointer.read_text(encoding="utf-8").strip()
        if name:
            return name
    ships = shipped()
    return ships[-1].version if ships else None


def resolve(name: str) -> DetectorRef | None:
    """The detector ``name`` (``current``, a version, ``none``) stands for; None for
    ``none`` or when there is no current version at all."""
    if name == "none":
        return None
    version = current_version() if name == "current" else name
    if version is None:
        return None
    if not VERSION_RX.match(version):
        raise PolicyError(f"detector version {version!r} is not a version name", field="detector")
    for origin, root in (("registered", registry_root()), ("shipped", SHIPPED_DIR)):
        ref = _ref(root / version, origin)
        if ref is not None:
            return ref
    raise PolicyError(
        f"detector version {version!r} is neither registered in {registry_root()} nor shipped; "
        "`veilflow detector list` shows the versions",
        field="detection.detector",
    )


def version_of(name: str) -> str | None:
    """The version a setting stands for, without loading it (for manifests and lineage)."""
    ref = resolve(name)
    return ref.version if ref is not None else None


@lru_cache(maxsize=4)
def load_detector(path: str, matmul: Matmul = "numpy") -> Language:
    """The spaCy pipeline of a detector version (loaded once per process and product)."""
    import spacy

    from veilflow.detect.offline import ensure_offline

    ensure_offline()
    nlp = spacy.load(path)
    nlp.max_length = 2_000_000
    log.info("loaded detector %s", Path(path).parent.name)
    return use_matmul(nlp, matmul)
