"""The detector training DAG's shape, as Airflow parses it, and its stages run as tasks."""

from __future__ import annotations

import itertools
import runpy
from pathlib import Path
from typing import Any

import pytest

from veilflow.airflow.detector_dag import (
    DETECTOR_DAG_ID,
    DetectorTrainingOperator,
    _config,
    build_detector_dag,
)

DAG_FILE = Path(__file__).resolve().parents[2] / "dags" / "veilflow_detector_training.py"


def test_generate_train_evaluate_register_in_a_line() -> None:
    dag = build_detector_dag()
    assert dag.dag_id == DETECTOR_DAG_ID and dag.schedule is None
    order = ["generate_corpus", "train", "evaluate", "register"]
    for a, b in itertools.pairwise(order):
        assert dag.get_task(b).upstream_task_ids == {a}
    assert not dag.get_task("register").downstream_task_ids
    assert dag.max_active_runs == 1


def test_the_dag_file_defines_the_dag() -> None:
    assert DETECTOR_DAG_ID in runpy.run_path(str(DAG_FILE))


def test_a_run_conf_sets_size_seed_and_epochs() -> None:
    cfg = _config({"texts": "300", "seed": 9, "epochs": 2, "other": 1})
    assert (cfg.texts, cfg.seed, cfg.epochs, cfg.split) == (300, 9, 2, "train")
    assert _config(None).texts == 8000


def test_an_unknown_stage_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown detector training stage"):
        DetectorTrainingOperator(task_id="x", stage="publish")


class _TI:
    def __init__(self) -> None:
        self.xcom: dict[str, Any] = {}

    def xcom_pull(self, task_ids: str) -> Any:
        return self.xcom[task_ids]


@pytest.mark.slow
def test_the_tasks_register_then_refuse_on_a_failed_score(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from airflow.sdk.exceptions import AirflowFailException

    from veilflow.detect import model as detect_model

    monkeypatch.setenv("VEILFLOW_HOME", str(tmp_path / "home"))
    monkeypatch.setattr(detect_model, "SHIPPED_DIR", tmp_path / "none")
    dag = build_detector_dag()

    def run(run_id: str, conf: dict[str, Any]) -> dict[str, Any]:
        ti = _TI()
        dag_run = type("DagRun", (), {"conf": conf})()
        for stage in ("generate_corpus", "train", "evaluate", "register"):
            ctx = {"run_id": run_id, "dag_run": dag_run, "ti": ti}
            ti.xcom[stage] = dag.get_task(stage).execute(ctx)
        return ti.xcom

    first = run("manual__1", {"texts": 150, "epochs": 3, "seed": 3, "eval_texts": 60})
    assert first["register"]["registered"]
    with pytest.raises(AirflowFailException, match="not registered"):
        run("manual__2", {"texts": 50, "epochs": 1, "seed": 4, "eval_texts": 60})
    assert detect_model.current_version() == first["train"]["version"]
