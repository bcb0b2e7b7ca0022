"""The batch pipeline's own ``scrub_text`` operators, per dataset column, for the scrub API.

A token is scoped to one dataset's free-text column. The service compiles that dataset's
policy with the same planner a run uses (``plan_policy``), with data keys from the vault, so
``POST /scrub`` writes exactly what a run would write in that column for the same text: the
same tokens, the same surrogates, the same placeholders. ``POST /detect`` reports the spans
the column's scanner finds, positions and entity types only.

Keys are pinned per compiled plan, as a run pins them; plans are compiled again after
``refresh_seconds`` so a rotated key comes into use without a restart.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from veilflow.detect.scrub import ScrubText
from veilflow.detect.spans import Span
from veilflow.errors import Terminal
from veilflow.pipeline.plan import plan_policy
from veilflow.policy.loader import load_policy_folder
from veilflow.policy.model import Policy
from veilflow.transform.base import STRING, ChunkContext
from veilflow.transform.keys import KeyProvider

log = logging.getLogger(__name__)


class NotServable(Terminal):
    """A dataset or column that the service cannot scrub for."""


def scrub_columns(policy: Policy) -> list[str]:
    """The columns of ``policy`` whose action is ``scrub_text``, in policy order."""
    return [name for name, spec in policy.columns.items() if spec.action == ScrubText.name]


def column_for(policy: Policy, column: str | None) -> str:
    """The free-text column a token for ``policy`` serves: ``column`` when it is one, else the
    only one the policy has."""
    columns = scrub_columns(policy)
    if column is not None:
        if column not in columns:
            raise NotServable(
                f"column {column!r} of dataset {policy.dataset!r} is not a scrub_text column;"
                f" its scrub_text columns: {', '.join(columns) or 'none'}"
            )
        return column
    if len(columns) != 1:
        raise NotServable(
            f"dataset {policy.dataset!r} has {len(columns)} scrub_text columns"
            f" ({', '.join(columns) or 'none'}); name one with --column"
        )
    return columns[0]


def policies_by_dataset(folder: Path) -> dict[str, Policy]:
    """The usable policies of ``folder`` by dataset (a broken one is logged and left out,
    as the DAG factory leaves it out)."""
    loaded = load_policy_folder(folder)
    for error in loaded.errors:
        log.error("policy not served: %s", error)
    return {p.dataset: p for p in loaded.policies.values()}


@dataclass
class ScrubResult:
    """Texts out, and what was found in them, counted by entity (never the texts)."""

    texts: list[str | None]
    entities: Counter[str]


class Scrubbers:
    """One compiled ``scrub_text`` operator per (dataset, column), made on first use."""

    def __init__(
        self,
        policies: dict[str, Policy],
        keys: Callable[[], KeyProvider],
        *,
        refresh_seconds: float = 300.0,
    ) -> None:
        self._policies = policies
        self._keys = keys
        self._refresh = refresh_seconds
        self._ops: dict[tuple[str, str], tuple[float, ScrubText]] = {}
        self._lock = threading.Lock()

    @property
    def datasets(self) -> list[str]:
        return sorted(d for d, p in self._policies.items() if scrub_columns(p))

    def operator(self, dataset: str, column: str) -> ScrubText:
        now = time.monotonic()
        hit = self._ops.get((dataset, column))
        if hit is not None and now - hit[0] < self._refresh:
            return hit[1]
        with self._lock:
            policy = self._policies.get(dataset)
            if policy is None:
                raise NotServable(f"no policy for dataset {dataset!r} in the policies folder")
            column_for(policy, column)
            plan = plan_policy(policy, self._keys())
            (op,) = [c.operator for c in plan.columns if c.name == column]
            assert isinstance(op, ScrubText)
            self._ops[(dataset, column)] = (now, op)
            return op

    def scrub(self, dataset: str, column: str, texts: Sequence[str]) -> ScrubResult:
        """``texts`` as the column's ``scrub_text`` writes them in a run."""
        op = self.operator(dataset, column)
        values = pd.Series(pd.array(list(texts), dtype=STRING))
        chunk = ChunkContext(frame=pd.DataFrame({column: values}), key_column=column)
        out = op.apply(values, chunk)
        found: Counter[str] = Counter()
        for what, n in chunk.counters.get(column, Counter()).items():
            if what.startswith("entity:"):
                found[what.removeprefix("entity:")] += n
        result = [None if v is pd.NA else str(v) for v in out.astype(object).tolist()]
        return ScrubResult(texts=result, entities=found)

    def detect(self, dataset: str, column: str, texts: Sequence[str]) -> list[list[Span]]:
        """The spans the column's scanner reports in each text (its entities only)."""
        op = self.operator(dataset, column)
        scan = op.scanner.scan(list(texts), entities=op.config.entities)
        return [[] if i in scan.reasons else spans for i, spans in enumerate(scan.spans)]
