"""The detector training DAG run by Airflow (`airflow dags test`, tiny training): generate
corpus, train, evaluate on heldout, register, with the version and its report in the state
folder."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def test_training_dag_refuses_a_candidate_below_the_version_in_force(
    airflow_session: dict[str, str], zones_db: str, tmp_path: Path
) -> None:
    home = tmp_path / "home"
    conf = {"texts": 150, "epochs": 3, "seed": 3, "eval_texts": 60}
    out = subprocess.run(
        ["airflow", "dags", "test", "veilflow_detector_training", "--conf", json.dumps(conf)],
        env={**airflow_session, "VEILFLOW_DATABASE_URL": zones_db, "VEILFLOW_HOME": str(home)},
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    log = out.stdout + out.stderr
    # With the shipped version in force, a candidate this small scores below it: the
    # register task fails the run and the candidate stays with the reason.
    candidates = list((home / "detectors" / "candidates").glob("det-s3-*/report.json"))
    assert len(candidates) == 1, log[-4000:]
    report = json.loads(candidates[0].read_text())
    assert report["corpus"] == {**report["corpus"], "split": "train", "texts": 150, "seed": 3}
    assert report["evaluation"]["data"]["split"] == "heldout"
    assert report["baseline"]["version"].startswith("det-s20261204-")
    assert report["status"] == "refused"
    assert "not registered" in log and out.returncode != 0
    assert not (home / "detectors" / "CURRENT").exists()
