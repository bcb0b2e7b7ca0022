"""Lineage of DP releases: the publish event has one output per release table with
AGGREGATION column lineage, and the veilflow facet's differentialPrivacy field with the ε
spent; the event validates against the official OpenLineage schemas and the facet's own."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from tests.unit import lineage_support as ls
from veilflow.lineage.events import build_stage_event, event_dict
from veilflow.lineage.facets import FACET_KEY
from veilflow.lineage.naming import Naming
from veilflow.lineage.validation import event_errors

NAMING = Naming("postgres://localhost:5432", "veilflow")

RELEASES = {
    "releases": [
        {
            "name": "amount_histogram",
            "table": "anonymized.patients_amount_histogram",
            "statistic": "histogram",
            "column": "amount",
            "group_by": ["gender"],
            "cells": 21,
            "epsilon": 0.5,
            "delta": 0.0,
            "mechanism": "geometric",
            "sensitivity": 1.0,
            "scale": 2.0,
        },
        {
            "name": "visits",
            "table": "anonymized.patients_visits",
            "statistic": "count",
            "column": None,
            "group_by": [],
            "cells": 1,
            "epsilon": 0.25,
            "delta": 0.0,
            "mechanism": "geometric",
            "sensitivity": 1.0,
            "scale": 4.0,
        },
    ],
    "budget": {
        "dataset": "patients",
        "epsilon_total": 5.0,
        "delta_total": 0.0,
        "epsilon_spent": 0.75,
        "delta_spent": 0.0,
        "epsilon_remaining": 4.25,
        "delta_remaining": 0.0,
    },
    "epsilon_spent": 0.75,
    "delta_spent": 0.0,
}


SYNTHETIC = {
    "table": "anonymized.patients_synthetic",
    "synthesizer": "gaussian_copula",
    "columns": ["zip", "ward"],
    "rows": 996,
    "trained_on": 996,
    "exact_copies": 0,
    "quarantined_as": None,
}


def publish_event(
    stage: str = "publish", synthetic: dict[str, Any] | None = None
) -> dict[str, Any]:
    manifest = {**ls.manifest(passed=True), "releases": RELEASES}
    if synthetic is not None:
        manifest["synthetic"] = synthetic
    return event_dict(
        build_stage_event(
            ls.policy(),
            ls.RUN_ID,
            manifest,
            stage=stage,
            event_type="COMPLETE",
            naming=NAMING,
            event_time=datetime(2026, 12, 5, 7, tzinfo=UTC),
        )
    )


def test_publish_outputs_each_release_with_aggregation_lineage() -> None:
    event = publish_event()
    assert event_errors(event, ls.require_spec()) == []
    outputs = {o["name"]: o for o in event["outputs"]}
    hist = outputs["veilflow.anonymized.patients_amount_histogram"]
    fields = hist["facets"]["columnLineage"]["fields"]
    assert set(fields) == {"gender", "bin_lower", "bin_upper", "count"}
    count = fields["count"]
    assert count["transformationType"] == "AGGREGATION"
    t = count["inputFields"][0]["transformations"][0]
    assert (count["inputFields"][0]["field"], t["type"], t["subtype"], t["masking"]) == (
        "amount",
        "DIRECT",
        "AGGREGATION",
        True,
    )
    assert "ε=0.5" in t["description"] and "geometric" in t["description"]
    assert [f["name"] for f in hist["facets"]["schema"]["fields"]] == list(
        ["gender", "bin_lower", "bin_upper", "count"]
    )
    # A count of all rows has no measured column: its lineage is the table's.
    assert (
        outputs["veilflow.anonymized.patients_visits"]["facets"]["columnLineage"]["fields"][
            "count"
        ]["inputFields"]
        == []
    )


def test_the_veilflow_facet_carries_the_epsilon_spent_on_publish_only() -> None:
    dp = publish_event()["run"]["facets"][FACET_KEY]["differentialPrivacy"]
    assert dp["epsilonSpent"] == 0.75 and dp["budget"]["epsilonRemaining"] == 4.25
    assert [(r["name"], r["epsilon"], r["scale"]) for r in dp["releases"]] == [
        ("amount_histogram", 0.5, 2.0),
        ("visits", 0.25, 4.0),
    ]
    validate = publish_event("validate")
    assert "differentialPrivacy" not in validate["run"]["facets"][FACET_KEY]
    assert event_errors(validate, ls.require_spec()) == []


def test_publish_outputs_the_synthetic_table_sampled_from_every_synthesized_column() -> None:
    event = publish_event(synthetic=SYNTHETIC)
    assert event_errors(event, ls.require_spec()) == []
    outputs = {o["name"]: o for o in event["outputs"]}
    syn = outputs["veilflow.anonymized.patients_synthetic"]
    assert [f["name"] for f in syn["facets"]["schema"]["fields"]] == ["zip", "ward"]
    fields = syn["facets"]["columnLineage"]["fields"]
    assert set(fields) == {"zip", "ward"}
    for column in ("zip", "ward"):
        inputs = fields[column]["inputFields"]
        assert [i["field"] for i in inputs] == ["zip", "ward"]
        # Fitted on the candidate the gate passed (the event's second input), not the source.
        assert {i["name"] for i in inputs} == {event["inputs"][1]["name"]}
        assert event["inputs"][1]["name"].endswith("__out")
        t = inputs[0]["transformations"][0]
        assert (t["type"], t["subtype"], t["masking"]) == ("DIRECT", "AGGREGATION", True)
        assert "gaussian_copula" in t["description"] and "996" in t["description"]
    # Quarantined, it was never published: no output, and none on the validate event.
    quarantined = publish_event(synthetic={**SYNTHETIC, "quarantined_as": "quarantine.x"})
    assert "veilflow.anonymized.patients_synthetic" not in {
        o["name"] for o in quarantined["outputs"]
    }
    validate = publish_event("validate", synthetic=SYNTHETIC)
    assert "veilflow.anonymized.patients_synthetic" not in {o["name"] for o in validate["outputs"]}
