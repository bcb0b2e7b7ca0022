"""What the scrub API did, as counts, written to the audit log at intervals.

Every request is counted under its token's name and dataset (or ``-`` for a request whose
token was missing, malformed or unknown): by endpoint, by status code, texts and characters
in, and the entities found per dataset. No text, no token and no span ever goes in. Each
interval (and on shutdown) the counts go into the audit log as one ``api.usage`` row per
token and dataset, with the request count as the row's count; then they start again. If the
database cannot be reached, the counts are kept and go with the next interval.
"""

from __future__ import annotations

import logging
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import psycopg

from veilflow.vault.audit import record

log = logging.getLogger(__name__)

ACTION = "api.usage"
ANONYMOUS = "-"
#: The token name of a dataset's entity counts.
ALL_TOKENS = "*"


@dataclass
class _Tally:
    requests: Counter[str] = field(default_factory=Counter)  # by endpoint
    statuses: Counter[str] = field(default_factory=Counter)
    texts: int = 0
    characters: int = 0
    entities: Counter[str] = field(default_factory=Counter)

    @property
    def count(self) -> int:
        return sum(self.requests.values()) or sum(self.entities.values())

    def merge(self, other: _Tally) -> None:
        self.requests.update(other.requests)
        self.statuses.update(other.statuses)
        self.texts += other.texts
        self.characters += other.characters
        self.entities.update(other.entities)

    def details(self, token: str) -> dict[str, Any]:
        if token == ALL_TOKENS:
            return {"token": token, "entities": dict(sorted(self.entities.items()))}
        return {
            "token": token,
            "requests": dict(sorted(self.requests.items())),
            "statuses": dict(sorted(self.statuses.items())),
            "texts": self.texts,
            "characters": self.characters,
        }


class Usage:
    """Thread-safe counters, flushed to the audit log by ``flush``."""

    def __init__(self) -> None:
        self._tallies: dict[tuple[str, str], _Tally] = {}
        self._lock = threading.Lock()

    def request(
        self,
        endpoint: str,
        status: int,
        *,
        token: str = ANONYMOUS,
        dataset: str = ANONYMOUS,
        texts: int = 0,
        characters: int = 0,
    ) -> None:
        with self._lock:
            t = self._tallies.setdefault((token, dataset), _Tally())
            t.requests[endpoint] += 1
            t.statuses[str(status)] += 1
            t.texts += texts
            t.characters += characters

    def found(self, dataset: str, entities: Counter[str]) -> None:
        with self._lock:
            self._tallies.setdefault((ALL_TOKENS, dataset), _Tally()).entities.update(entities)

    def snapshot(self) -> dict[tuple[str, str], dict[str, Any]]:
        """The counts so far (for tests and ``/health``), not reset."""
        with self._lock:
            return {k: t.details(k[0]) for k, t in self._tallies.items()}

    def flush(self, connect: Callable[[], psycopg.Connection]) -> int:
        """Write one audit row per token and dataset with requests; return the rows written."""
        with self._lock:
            tallies, self._tallies = self._tallies, {}
        pending = {k: t for k, t in tallies.items() if t.count}
        if not pending:
            return 0
        written = 0
        try:
            with connect() as conn:
                for (token, dataset), tally in sorted(pending.items()):
                    record(
                        conn,
                        ACTION,
                        target=dataset,
                        count=tally.count,
                        details=tally.details(token),
                    )
                    written += 1
        except Exception as exc:  # keep what was not written for the next interval
            log.error("could not write API usage to the audit log: %s", type(exc).__name__)
            rest = sorted(pending.items())[written:]
            with self._lock:
                for key, tally in rest:
                    self._tallies.setdefault(key, _Tally()).merge(tally)
        return written
