"""One Airflow operator for every veilflow stage: it loads the policy file and calls the
stage function in ``veilflow.pipeline.stages``. XCom carries only chunk references and counts.
"""

from __future__ import annotations

import logging
from typing import Any

from airflow.sdk import BaseOperator

from veilflow.errors import Terminal, VeilflowError

log = logging.getLogger(__name__)


def veilflow_run_id(dataset: str, airflow_run_id: str) -> str:
    """A run id unique across DAGs: the dataset plus Airflow's run id."""
    return f"{dataset}:{airflow_run_id}"


def redact_task_logs() -> None:
    """Mask PII-shaped text in this task's log, the last line of defence behind messages
    that carry no value. Airflow 3's task SDK writes the task log through structlog: its
    own events (a failed task's traceback among them) through structlog's chain, and
    ``logging`` records through the root handler's ``ProcessorFormatter``; both get
    ``redact_event`` before their renderer. Idempotent."""
    from veilflow import log_redaction

    log_redaction.install()
    log_redaction.install_structlog()


class VeilflowStageOperator(BaseOperator):
    """Runs one stage (``extract``, ``transform``, ``validate``, ``publish``, ``cleanup``)
    of the policy at ``policy_path`` for the current DAG run."""

    template_fields = ("chunk",)
    ui_color = "#e8f1fb"

    def __init__(
        self, *, policy_path: str, stage: str, chunk: dict[str, int] | None = None, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.policy_path = policy_path
        self.stage = stage
        self.chunk = chunk

    def execute(self, context: Any) -> Any:
        from veilflow.airflow.lineage import parent_from_context
        from veilflow.pipeline import stages
        from veilflow.pipeline.keys import default_key_provider
        from veilflow.policy import load_policy

        redact_task_logs()
        policy = load_policy(self.policy_path)
        run_id = veilflow_run_id(policy.dataset, context["run_id"])
        self._veilflow_run_id = run_id
        parent = parent_from_context(context)
        try:
            if self.stage == "extract":
                conf = getattr(context.get("dag_run"), "conf", None) or {}
                result = stages.extract(
                    policy,
                    run_id,
                    default_key_provider(),
                    parent=parent,
                    full=bool(conf.get("full")),  # trigger with {"full": true}
                )
                return [c.__dict__ for c in result.chunks]
            if self.stage == "transform":
                assert self.chunk is not None
                res = stages.transform_chunk(
                    policy,
                    run_id,
                    stages.ChunkRef(**self.chunk),
                    default_key_provider(),
                    parent=parent,
                )
                return {"chunk": res.index, "rows": res.rows}
            if self.stage == "validate":
                report = stages.validate(
                    policy, run_id, parent=parent, keys=default_key_provider(), progress=log.info
                )
                return {"passed": report.passed, "checks": len(report.checks)}
            if self.stage == "publish":
                pub = stages.publish(policy, run_id, parent=parent)
                return {"table": pub.table, "rows": pub.rows}
            if self.stage == "cleanup":
                stages.fail_run(
                    policy, run_id, "a task of the DAG run failed; see Airflow logs", parent=parent
                )
                return None
            raise VeilflowError(f"unknown stage {self.stage!r}")
        except Terminal as exc:  # no retry can fix it: fail the task at once
            if self.stage == "transform":
                # Sibling chunks may still be reading the snapshot and writing the candidate:
                # record the failure only; ``cleanup``, a teardown that waits for every
                # mapped task, quarantines and drops the run's tables.
                index = self.chunk["index"] if isinstance(self.chunk, dict) else -1
                stages.fail_chunk(policy, run_id, index, str(exc), parent=parent)
            else:
                stages.fail_run(policy, run_id, str(exc), parent=parent)
            from airflow.sdk.exceptions import AirflowFailException

            raise AirflowFailException(str(exc)) from None

    def _lineage(self, error: str | None = None) -> Any:
        from veilflow.airflow.lineage import stage_lineage

        run_id = getattr(self, "_veilflow_run_id", None)
        if run_id is None or self.stage == "cleanup":
            return None
        chunk = self.chunk.get("index") if isinstance(self.chunk, dict) else None
        return stage_lineage(self.policy_path, run_id, self.stage, chunk=chunk, error=error)

    def get_openlineage_facets_on_complete(self, task_instance: Any) -> Any:
        """Airflow's OpenLineage provider sees the same datasets and facets veilflow stores."""
        return self._lineage()

    def get_openlineage_facets_on_failure(self, task_instance: Any) -> Any:
        return self._lineage(error="task failed")
