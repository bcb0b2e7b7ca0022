"""The detector training DAG (``veilflow_detector_training``): generate corpus, train,
evaluate on the heldout split, register. All logic lives in ``veilflow.airflow.detector_dag``
and ``veilflow.detector.flow``."""

from __future__ import annotations

from veilflow.airflow.detector_dag import DETECTOR_DAG_ID, build_detector_dag

globals()[DETECTOR_DAG_ID] = build_detector_dag()
