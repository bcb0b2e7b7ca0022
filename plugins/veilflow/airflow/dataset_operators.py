"""The Airflow operator of a dataset of several tables: it loads the dataset policy and calls
the stage function of ``veilflow.pipeline.dataset`` for one table, or for the whole dataset
(``foreign_keys``, ``publish``, ``cleanup``). XCom carries only chunk references and counts."""

from __future__ import annotations

import logging
from typing import Any

from airflow.sdk import BaseOperator

from veilflow.airflow.operators import redact_task_logs, veilflow_run_id
from veilflow.errors import Terminal, VeilflowError

log = logging.getLogger(__name__)

#: Stages of one table, and stages of the whole dataset.
TABLE_STAGES = ("extract", "transform", "validate")
DATASET_STAGES = ("foreign_keys", "publish", "cleanup")


class VeilflowDatasetOperator(BaseOperator):
    """Runs one stage of the dataset policy at ``policy_path`` for the current DAG run: a
    table's ``extract``, ``transform`` (one chunk) or ``validate``, or the dataset's
    ``foreign_keys`` check, ``publish`` or ``cleanup``."""

    template_fields = ("chunk",)
    ui_color = "#e3f4ea"

    def __init__(
        self,
        *,
        policy_path: str,
        stage: str,
        table: str | None = None,
        chunk: dict[str, int] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if (stage in TABLE_STAGES) != (table is not None):
            raise VeilflowError(f"stage {stage!r} takes {'a' if table is None else 'no'} table")
        self.policy_path = policy_path
        self.stage = stage
        self.table = table
        self.chunk = chunk

    def execute(self, context: Any) -> Any:
        from veilflow.airflow.lineage import parent_from_context
        from veilflow.pipeline import dataset, stages
        from veilflow.pipeline.keys import default_key_provider
        from veilflow.pipeline.stages import ChunkRef
        from veilflow.policy import load_dataset_policy

        redact_task_logs()
        ds = load_dataset_policy(self.policy_path)
        run_id = veilflow_run_id(ds.dataset, context["run_id"])
        self._veilflow_run_id = run_id
        parent = parent_from_context(context)
        table = self.table
        try:
            if self.stage == "extract":
                assert table is not None
                ex = dataset.extract_table(ds, table, run_id, default_key_provider(), parent)
                return [c.__dict__ for c in ex.chunks]
            if self.stage == "transform":
                assert table is not None and self.chunk is not None
                res = dataset.transform_table_chunk(
                    ds, table, run_id, ChunkRef(**self.chunk), default_key_provider(), parent
                )
                return {"chunk": res.index, "rows": res.rows}
            if self.stage == "validate":
                assert table is not None
                report = dataset.validate_table(
                    ds, table, run_id, default_key_provider(), parent, progress=log.info
                )
                return {"passed": report.passed, "checks": len(report.checks)}
            if self.stage == "foreign_keys":
                counts = dataset.check_foreign_keys(ds, run_id)
                for c in counts:
                    log.info("foreign key %s", c.describe())
                return {"foreign_keys": len(counts), "orphans": sum(c.orphans for c in counts)}
            if self.stage == "publish":
                pub = dataset.publish_dataset(ds, run_id, parent)
                return {"rows": pub.rows}
            if self.stage == "cleanup":
                dataset.fail_dataset(
                    ds, run_id, "a task of the DAG run failed; see Airflow logs", parent
                )
                return None
            raise VeilflowError(f"unknown stage {self.stage!r}")
        except Terminal as exc:  # no retry can fix it: fail the task at once
            if self.stage == "transform" and table is not None:
                # Sibling chunks may still be working: record the failure only; cleanup (a
                # teardown that waits for every task) quarantines every table.
                index = self.chunk["index"] if isinstance(self.chunk, dict) else -1
                stages.fail_chunk(
                    ds.table_policy(table),
                    dataset.table_run_id(run_id, table),
                    index,
                    str(exc),
                    parent=parent,
                )
            elif table is not None:
                # This table only: another table's tasks may still be working; cleanup
                # fails the dataset once every task has stopped.
                stages.fail_run(
                    ds.table_policy(table), dataset.table_run_id(run_id, table), str(exc), parent
                )
            else:  # every table's work is done: fail them all now
                dataset.fail_dataset(ds, run_id, str(exc), parent)
            from airflow.sdk.exceptions import AirflowFailException

            raise AirflowFailException(str(exc)) from None

    def _lineage(self, error: str | None = None) -> Any:
        from veilflow.airflow.lineage import stage_lineage
        from veilflow.pipeline.dataset import table_run_id
        from veilflow.policy import load_dataset_policy

        run_id = getattr(self, "_veilflow_run_id", None)
        if run_id is None or self.table is None:
            return None  # the dataset's own stages emit each table's events themselves
        policy = load_dataset_policy(self.policy_path).table_policy(self.table)
        chunk = self.chunk.get("index") if isinstance(self.chunk, dict) else None
        return stage_lineage(
            policy, table_run_id(run_id, self.table), self.stage, chunk=chunk, error=error
        )

    def get_openlineage_facets_on_complete(self, task_instance: Any) -> Any:
        """Airflow's OpenLineage provider sees the same datasets and facets veilflow stores."""
        return self._lineage()

    def get_openlineage_facets_on_failure(self, task_instance: Any) -> Any:
        return self._lineage(error="task failed")
