"""The detector training DAG (``veilflow_detector_training``): the project trains its own
detector on its own synthetic corpus, scores it on text it has not seen, and registers it
only when it does not score below the version in force.

    generate_corpus ──► train ──► evaluate ──► register

``generate_corpus`` writes the corpus's train split (``veilflow.corpus``, synthetic: no
personal data) under ``$VEILFLOW_HOME/detectors/runs/<run>/``; ``train`` fits a candidate
and saves it under ``detectors/candidates/``; ``evaluate`` scores the candidate and the
version in force on the same heldout texts (templates, locales and name source absent from
training, ADR 0014); ``register`` puts the candidate in force, or fails the run when it
scored below (the candidate stays, its report saying why). XCom carries names and figures.

Triggered by hand (no schedule): ``airflow dags trigger veilflow_detector_training`` with an
optional conf ``{"texts": 8000, "seed": 20261204, "epochs": 10, "eval_texts": 3000}``.
All the work is ``veilflow.detector.flow``'s.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from airflow.sdk import DAG, BaseOperator

log = logging.getLogger(__name__)

DETECTOR_DAG_ID = "veilflow_detector_training"
STAGES = ("generate_corpus", "train", "evaluate", "register")


def _config(conf: dict[str, Any] | None) -> Any:
    from veilflow.detector.training import TrainingConfig

    conf = conf or {}
    base = TrainingConfig()
    return TrainingConfig(
        texts=int(conf.get("texts", base.texts)),
        seed=int(conf.get("seed", base.seed)),
        epochs=int(conf.get("epochs", base.epochs)),
    )


class DetectorTrainingOperator(BaseOperator):
    """One stage of a detector training run."""

    ui_color = "#e8f4ea"

    def __init__(self, *, stage: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if stage not in STAGES:
            raise ValueError(f"unknown detector training stage {stage!r}")
        self.stage = stage

    def execute(self, context: Any) -> Any:
        from veilflow.detector import flow

        run = str(context["run_id"])
        conf = dict(getattr(context.get("dag_run"), "conf", None) or {})
        ti = context["ti"]
        if self.stage == "generate_corpus":
            return flow.generate_corpus(run, _config(conf))
        if self.stage == "train":
            return flow.train_candidate(run)
        version = ti.xcom_pull(task_ids="train")["version"]
        if self.stage == "evaluate":
            texts = int(conf.get("eval_texts", flow.EVAL_TEXTS))
            return flow.evaluate_candidate(version, texts)
        from airflow.sdk.exceptions import AirflowFailException

        from veilflow.detector.registry import RegistrationRefused

        try:
            return flow.register_candidate(version)
        except RegistrationRefused as exc:
            # Scoring below the version in force does not mend on a retry.
            raise AirflowFailException(str(exc)) from exc


def build_detector_dag() -> DAG:
    """The training DAG, triggered by hand."""
    with DAG(
        dag_id=DETECTOR_DAG_ID,
        description="Train the detector on the train split, score it on heldout, register it",
        schedule=None,
        start_date=datetime(2024, 1, 1),
        catchup=False,
        max_active_runs=1,
        tags=["veilflow", "detection"],
        doc_md=__doc__,
    ) as dag:
        tasks = [DetectorTrainingOperator(task_id=s, stage=s) for s in STAGES]
        generate, train, evaluate, register = tasks
        generate >> train >> evaluate >> register
    return dag
