"""A run names the trained detector version it used, in its manifest and its lineage."""

from __future__ import annotations

import json
from pathlib import Path

import psycopg

from veilflow.detect.model import version_of
from veilflow.pipeline.runner import run_policy
from veilflow.policy import parse_policy


def test_the_manifest_and_lineage_name_the_detector_version(
    seeded_db: str, conn: psycopg.Connection, customers_policy_path: Path
) -> None:
    policy = parse_policy(customers_policy_path.read_text())
    run_policy(policy)
    used = version_of(policy.detection.detector)
    assert used is not None  # the version shipped with the code, on a fresh state folder
    (manifest,) = conn.execute("SELECT manifest FROM governance.runs").fetchone() or (None,)
    note = next(c for c in manifest["columns"] if c["name"] == "note")
    assert note["params"]["detector_version"] == used
    assert f"detector={used or 'none'}" in note["description"]
    events = [
        e
        for (e,) in conn.execute("SELECT event FROM governance.lineage_events").fetchall()
        if "veilflow_anonymization" in json.dumps(e)
    ]
    assert events
    for event in events:
        facet = event["run"]["facets"]["veilflow_anonymization"]
        note = next(c for c in facet["columns"] if c["name"] == "note")
        assert note["parameters"]["detector_version"] == used
