"""An in-memory ``LineageEmitter`` for tests: builds exactly the events ``emit_stage``
would store, and keeps them in a list instead of a database."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import psycopg

from veilflow.lineage.events import ParentRun, build_stage_event, event_dict
from veilflow.lineage.naming import Naming
from veilflow.policy.model import Policy
from veilflow.zones.manifest import RunManifest


class InMemoryLineage:
    """Collects events as OpenLineage JSON dicts, in emission order."""

    def __init__(self, naming: Naming | None = None) -> None:
        self.naming = naming or Naming("postgres://localhost:5432", "veilflow")
        self.events: list[dict[str, Any]] = []

    def __call__(
        self,
        conn: psycopg.Connection | None,
        *,
        stage: str,
        event_type: str,
        policy: Policy,
        run_id: str,
        manifest: RunManifest | Mapping[str, Any],
        parent: ParentRun | None = None,
        error: str | None = None,
        chunk: int | None = None,
    ) -> None:
        self.events.append(
            event_dict(
                build_stage_event(
                    policy,
                    run_id,
                    manifest,
                    stage=stage,
                    event_type=event_type,
                    naming=self.naming,
                    parent=parent,
                    error=error,
                    chunk=chunk,
                )
            )
        )

    def of(self, stage: str, event_type: str | None = None) -> list[dict[str, Any]]:
        """The events of one stage (and type)."""
        job_suffix = f".{stage}"
        return [
            e
            for e in self.events
            if e["job"]["name"].endswith(job_suffix)
            and (event_type is None or e["eventType"] == event_type)
        ]
