"""Lineage events built from a hand-made run manifest: valid against the official OpenLineage
schemas and veilflow's facet schema, column lineage for every output column, no values and
no key material."""

from __future__ import annotations

import base64
import copy
import json
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from tests.unit import lineage_support as ls
from veilflow.errors import KeyNotFound
from veilflow.lineage.events import (
    EVENT_TYPES,
    ParentRun,
    build_stage_event,
    event_dict,
    stage_run_id,
)
from veilflow.lineage.facets import (
    FACET_KEY,
    FACET_SCHEMA_FILE,
    FACET_SCHEMA_URL,
    STAGES,
    describe_column,
    key_version,
)
from veilflow.lineage.naming import Naming, as_run_uuid, naming_of, pg_namespace
from veilflow.lineage.validation import event_errors

NAMING = Naming("postgres://localhost:5432", "veilflow")
WHEN = datetime(2026, 11, 27, 6, 30, tzinfo=UTC)
GOLDEN = Path(__file__).parent / "golden" / "lineage_publish_event.json"


def build(
    stage: str, event_type: str = "COMPLETE", *, passed: bool = True, **kw: Any
) -> dict[str, Any]:
    return event_dict(
        build_stage_event(
            ls.policy(),
            ls.RUN_ID,
            ls.manifest(passed=passed),
            stage=stage,
            event_type=event_type,
            naming=NAMING,
            event_time=WHEN,
            **kw,
        )
    )


# ------------------------------------------------------------------------------ schemas
@pytest.mark.parametrize("stage", STAGES)
@pytest.mark.parametrize("event_type", ["START", "COMPLETE", "FAIL"])
def test_every_stage_event_validates_against_the_official_schemas(
    stage: str, event_type: str
) -> None:
    spec = ls.require_spec()
    event = build(
        stage,
        event_type,
        passed=stage != "quarantine",
        error="gate refused the candidate" if event_type == "FAIL" else None,
    )
    assert event_errors(event, spec) == []
    facet = event["run"]["facets"][FACET_KEY]
    assert facet["_schemaURL"] == FACET_SCHEMA_URL
    assert facet["stage"] == stage


def test_an_early_event_with_an_empty_manifest_still_validates() -> None:
    spec = ls.require_spec()
    event = event_dict(
        build_stage_event(
            ls.policy(), ls.RUN_ID, {}, stage="extract", event_type="START", naming=NAMING
        )
    )
    assert event_errors(event, spec) == []


def test_the_validator_rejects_broken_events() -> None:
    """The checks above can fail: each corruption is reported where it is."""
    spec = ls.require_spec()
    good = build("publish")
    cases = {
        "run id not a UUID": lambda e: e["run"].__setitem__("runId", "run-1"),
        "event type unknown": lambda e: e.__setitem__("eventType", "DONE"),
        "transformation type not a string": lambda e: e["outputs"][0]["facets"]["columnLineage"][
            "fields"
        ]["email"]["inputFields"][0]["transformations"][0].__setitem__("type", 3),
        "a value slipped into the veilflow facet": lambda e: e["run"]["facets"][FACET_KEY][
            "columns"
        ][0].__setitem__("sample", "alice@example.com"),
        "unknown field in the veilflow facet": lambda e: e["run"]["facets"][FACET_KEY].__setitem__(
            "material", "00ff"
        ),
        "gdpr class unknown": lambda e: e["run"]["facets"][FACET_KEY]["columns"][0].__setitem__(
            "gdprClass", "safe"
        ),
        "facet schema unknown": lambda e: e["run"]["facets"]["processing_engine"].__setitem__(
            "_schemaURL", "https://example.invalid/x.json#/$defs/X"
        ),
    }
    for name, corrupt in cases.items():
        event = copy.deepcopy(good)
        corrupt(event)
        assert event_errors(event, spec), name


def test_facet_schema_file_is_the_facets_schema() -> None:
    schema = json.loads(FACET_SCHEMA_FILE.read_text())
    assert FACET_SCHEMA_URL.startswith(schema["$id"] + "#/$defs/")
    assert "VeilflowAnonymizationRunFacet" in schema["$defs"]


# ------------------------------------------------------------------------------ columns
def test_publish_gives_column_lineage_for_every_output_column() -> None:
    event = build("publish")
    (out,) = event["outputs"]
    assert out["namespace"] == "postgres://localhost:5432"
    assert out["name"] == "veilflow.anonymized.patients"
    policy = ls.policy()
    declared = [n for n, spec in policy.columns.items() if spec.action != "drop"]
    schema_names = [f["name"] for f in out["facets"]["schema"]["fields"]]
    assert schema_names == declared  # the dropped fax column is not an output
    fields = out["facets"]["columnLineage"]["fields"]
    assert sorted(fields) == sorted(declared)
    for name in declared:
        (inp,) = fields[name]["inputFields"]
        assert (inp["namespace"], inp["name"], inp["field"]) == (
            "postgres://localhost:5432",
            "veilflow.restricted.patients",
            name,
        )
        (t,) = inp["transformations"]
        action = policy.columns[name].action
        assert t["description"].startswith(action + "(")
        assert t["masking"] is (action != "keep")
        assert t["type"] == "DIRECT"
    email = fields["email"]["inputFields"][0]["transformations"][0]
    assert email["subtype"] == "TRANSFORMATION"
    assert "keep_domain=true" in email["description"]
    assert email["description"].endswith("with key patients/token version 1")
    assert fields["ward"]["inputFields"][0]["transformations"][0]["subtype"] == "IDENTITY"
    assert fields["phone"]["inputFields"][0]["transformations"][0]["subtype"] == "MASKED"
    assert "keep_last=2" in fields["phone"]["inputFields"][0]["transformations"][0]["description"]
    assert out["outputFacets"]["outputStatistics"]["rowCount"] == 996


def test_extract_copies_every_source_column_unmasked_into_staging() -> None:
    event = build("extract")
    (src,) = event["inputs"]
    (snap,) = event["outputs"]
    assert src["name"] == "veilflow.restricted.patients"
    assert snap["name"].startswith("veilflow.staging.patients__") and snap["name"].endswith("__src")
    fields = snap["facets"]["columnLineage"]["fields"]
    assert sorted(fields) == sorted(c.name for c in ls.SOURCE)  # fax included: raw copy
    assert all(
        f["inputFields"][0]["transformations"][0]["masking"] is False for f in fields.values()
    )
    assert snap["outputFacets"]["outputStatistics"]["rowCount"] == 1020  # rows + canaries


def test_gate_results_are_data_quality_assertions_on_the_candidate() -> None:
    event = build("validate", passed=False)
    cand = event["inputs"][1]
    assert cand["name"].endswith("__out")
    assertions = cand["inputFacets"]["dataQualityAssertions"]["assertions"]
    gate = ls.manifest(passed=False)["gate"]["checks"]
    assert [(a["assertion"], a["success"]) for a in assertions] == [
        (c["name"], c["passed"]) for c in gate
    ]
    failed = [a for a in assertions if not a["success"]]
    assert failed == [
        {
            "assertion": "no_raw_value_survives",
            "success": False,
            "column": "email",
            "severity": "error",
            "expected": "0",
            "actual": "3",
            "params": {},
        }
    ]
    assert event["outputs"] == []


def test_quarantine_event_names_the_quarantine_table_and_reasons() -> None:
    event = build("quarantine", passed=False)
    (out,) = event["outputs"]
    assert out["name"] == "veilflow.quarantine.patients__x"
    facet = event["run"]["facets"][FACET_KEY]
    assert facet["quarantine"] == {
        "table": "quarantine.patients__x",
        "reasons": [{"check": "no_raw_value_survives", "column": "email"}],
    }
    assert facet["gate"]["passed"] is False


# ------------------------------------------------------------------------------ facet
def test_veilflow_facet_carries_policy_keys_detection_gdpr_gate_and_rows() -> None:
    facet = build("publish")["run"]["facets"][FACET_KEY]
    pol = ls.policy()
    assert facet["policy"] == {
        "name": "patients",
        "hash": pol.hash,
        "file": "policies/patients.yaml",
    }
    assert facet["runId"] == ls.RUN_ID
    assert facet["keyVersions"] == [{"id": "patients/token", "version": 1}]
    by_name = {c["name"]: c for c in facet["columns"]}
    assert list(by_name) == list(pol.columns)
    assert by_name["email"]["operator"] == "tokenize"
    assert by_name["email"]["key"] == {"id": "patients/token", "version": 1}
    assert by_name["email"]["gdprClass"] == "pseudonymous"
    assert by_name["phone"]["gdprClass"] == "anonymous" and "key" not in by_name["phone"]
    assert by_name["fax"]["gdprClass"] == "removed" and "outputType" not in by_name["fax"]
    assert all(c["gdprReason"] for c in facet["columns"])
    assert facet["detection"] == {"notes": {"EMAIL_ADDRESS": 9, "PERSON": 41}}
    assert facet["counters"] == {"email": {"fallback_token": 2}}
    assert facet["rows"] == {"in": 1000, "canaries": 20, "out": 996, "suppressed": 4}
    assert facet["gate"]["passed"] is True and len(facet["gate"]["assertions"]) == 3
    assert facet["gate"]["dataDocs"] == "file:///tmp/docs/index.html"


def test_no_key_material_and_no_value_reaches_an_event() -> None:
    manifest = ls.manifest()
    material = ls.KEYS.data_key("patients", "token").material
    forms = {
        material.hex(),
        base64.b64encode(material).decode(),
        base64.urlsafe_b64encode(material).decode().rstrip("="),
        ls.MASTER.hex(),
        base64.b64encode(ls.MASTER).decode(),
    }
    for stage in STAGES:
        for event_type in ("START", "COMPLETE", "FAIL"):
            text = json.dumps(
                event_dict(
                    build_stage_event(
                        ls.policy(),
                        ls.RUN_ID,
                        manifest,
                        stage=stage,
                        event_type=event_type,
                        naming=NAMING,
                        error="boom" if event_type == "FAIL" else None,
                    )
                )
            )
            for form in forms:
                assert form not in text
            assert "material" not in text


def test_fail_event_carries_the_error_message_truncated() -> None:
    event = build("transform", "FAIL", error="operator tokenize failed " + "x" * 5000)
    msg = event["run"]["facets"]["errorMessage"]
    assert msg["programmingLanguage"] == "python"
    assert msg["message"].startswith("operator tokenize failed") and len(msg["message"]) == 2000
    assert "errorMessage" not in build("transform", "COMPLETE")["run"]["facets"]


def test_describe_column_and_key_refs() -> None:
    assert key_version("customers/token@v12") == {"id": "customers/token", "version": 12}
    assert key_version(None) is None
    with pytest.raises(KeyNotFound, match="names no version"):
        key_version("customers/token")
    assert (
        describe_column({"action": "mask", "params": {"keep_last": 4, "char": "*"}})
        == 'mask(char="*", keep_last=4)'
    )


# ------------------------------------------------------------------------------ naming, runs
def test_dataset_naming_follows_the_postgres_naming_spec(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("VEILFLOW_LINEAGE_PG_NAMESPACE", raising=False)

    class Info:
        host, port, dbname = "/tmp/pgdata", 5432, "veilflow"

    assert naming_of(Info()) == Naming("postgres://localhost:5432", "veilflow")
    assert pg_namespace("DB.example.org", 6543) == "postgres://db.example.org:6543"
    monkeypatch.setenv("VEILFLOW_LINEAGE_PG_NAMESPACE", "postgres://pg.internal:5432")
    assert pg_namespace("10.0.0.7", 5432) == "postgres://pg.internal:5432"


def test_start_and_complete_of_a_stage_share_one_run_and_stages_differ() -> None:
    start, done = build("transform", "START"), build("transform", "COMPLETE")
    assert start["run"]["runId"] == done["run"]["runId"] == stage_run_id(ls.RUN_ID, "transform")
    assert build("publish")["run"]["runId"] != done["run"]["runId"]
    assert stage_run_id(ls.RUN_ID, "transform", 0) != stage_run_id(ls.RUN_ID, "transform", 1)
    assert uuid.UUID(done["run"]["runId"]).version == 5
    assert done["job"] == {
        "namespace": "veilflow",
        "name": "patients.transform",
        "facets": done["job"]["facets"],
    }


def test_parent_is_the_airflow_dag_run_or_the_veilflow_run() -> None:
    dag_run = str(uuid.uuid4())
    parent = build("publish", parent=ParentRun("airflow", "anonymize_patients", dag_run))["run"][
        "facets"
    ]["parent"]
    assert parent["job"] == {"namespace": "airflow", "name": "anonymize_patients", "facets": {}}
    assert parent["run"]["runId"] == dag_run  # a UUID is used as is
    assert parent["root"]["run"]["runId"] == dag_run
    own = build("publish")["run"]["facets"]["parent"]
    assert own["job"] == {"namespace": "veilflow", "name": "patients", "facets": {}}
    assert own["run"]["runId"] == as_run_uuid(ls.RUN_ID)


def test_unknown_stage_or_event_type_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown stage"):
        build("load")
    with pytest.raises(ValueError, match="unknown event type"):
        build("publish", "DONE")
    assert set(EVENT_TYPES) >= {"START", "COMPLETE", "FAIL"}


def test_publish_event_matches_the_golden_json() -> None:
    """Any change to the event's shape shows up here as a reviewable diff."""
    event = build("publish")
    # The hash follows the policy model (checked against it above), not the event's shape.
    event["run"]["facets"][FACET_KEY]["policy"]["hash"] = "<policy hash>"
    expected = json.loads(GOLDEN.read_text())
    assert json.dumps(event, sort_keys=True, indent=1) == json.dumps(
        expected, sort_keys=True, indent=1
    )


def test_an_incremental_run_names_its_cursor_range_in_the_facet() -> None:
    """ADR 0017: the facet says which source range a run of an incremental policy took
    (cursor positions and counts), and the event still validates."""
    spec = ls.require_spec()
    manifest = ls.manifest()
    manifest["incremental"] = {
        "cursor": "customer_id",
        "type": "bigint",
        "mode": "append",
        "reason": "",
        "from": "1000",
        "to": "1150",
        "rows_taken": 150,
        "rows_total": 1150,
        "blocks": [{"lo": "1", "rows": 1000}, {"lo": "1001", "rows": 150}],
        "snapshot": "800:800:",
        "appends_to_run": "customers:earlier",
    }
    event = event_dict(
        build_stage_event(
            ls.policy(),
            ls.RUN_ID,
            manifest,
            stage="extract",
            event_type="COMPLETE",
            naming=NAMING,
            event_time=WHEN,
        )
    )
    assert event_errors(event, spec) == []
    facet = event["run"]["facets"][FACET_KEY]
    assert facet["increment"] == {
        "cursor": "customer_id",
        "mode": "append",
        "from": "1000",
        "to": "1150",
        "rowsTaken": 150,
    }
    assert "increment" not in build("extract")["run"]["facets"][FACET_KEY]
