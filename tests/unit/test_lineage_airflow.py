"""What Airflow's OpenLineage provider gets from a veilflow task: the store's datasets and
facets, in the provider's own ``OperatorLineage``."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from tests.unit import lineage_support as ls
from veilflow.airflow.lineage import LineageResult, parent_from_context, stage_lineage
from veilflow.lineage.events import build_stage_event, event_dict
from veilflow.lineage.facets import FACET_KEY
from veilflow.lineage.naming import Naming

NAMING = Naming("postgres://localhost:5432", "veilflow")


def test_publish_task_lineage_carries_the_stored_event_datasets_and_facets() -> None:
    lin = stage_lineage(ls.policy(), ls.RUN_ID, "publish", manifest=ls.manifest(), naming=NAMING)
    event = event_dict(
        build_stage_event(
            ls.policy(),
            ls.RUN_ID,
            ls.manifest(),
            stage="publish",
            event_type="COMPLETE",
            naming=NAMING,
        )
    )
    from airflow.providers.openlineage.extractors import OperatorLineage
    from openlineage.client.serde import Serde

    assert isinstance(lin, OperatorLineage)
    assert [Serde.to_dict(d) for d in lin.outputs] == event["outputs"]
    assert [Serde.to_dict(d) for d in lin.inputs] == event["inputs"]
    assert set(lin.run_facets) == {FACET_KEY}  # parent and engine are the provider's own
    assert Serde.to_dict(lin.run_facets[FACET_KEY]) == event["run"]["facets"][FACET_KEY]


def test_cleanup_task_maps_to_quarantine_and_failure_carries_the_error() -> None:
    lin = stage_lineage(
        ls.policy(),
        ls.RUN_ID,
        "cleanup",
        manifest=ls.manifest(passed=False),
        naming=NAMING,
        error="gate refused the candidate",
    )
    assert lin.outputs[0].name == "veilflow.quarantine.patients__x"
    assert lin.run_facets["errorMessage"].message == "gate refused the candidate"


def test_lineage_never_raises(caplog: pytest.LogCaptureFixture) -> None:
    lin = stage_lineage(ls.policy(), ls.RUN_ID, "no-such-stage", manifest={}, naming=NAMING)
    assert (lin.inputs, lin.outputs, lin.run_facets) == ([], [], {})
    assert "lineage for task no-such-stage" in caplog.text


def test_parent_falls_back_to_the_dag_run_without_the_provider_macros() -> None:
    ti = SimpleNamespace(dag_id="anonymize_patients")  # not a real task instance
    parent = parent_from_context({"ti": ti, "run_id": "manual__2026-11-27"})
    assert (parent.job_name, parent.run_id) == ("anonymize_patients", "manual__2026-11-27")


def test_stand_in_matches_the_provider_shape() -> None:
    assert set(LineageResult().__dict__) == {"inputs", "outputs", "run_facets", "job_facets"}
