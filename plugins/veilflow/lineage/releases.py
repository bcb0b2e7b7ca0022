"""Lineage of a run's differentially private releases: one output dataset per release table,
its columns' lineage from the source (grouping columns INDIRECT/GROUP_BY, the released value
DIRECT/AGGREGATION, masked by the noise), and the ``differentialPrivacy`` field of the
veilflow run facet (ε, δ, mechanism and noise scale per release; the budget after the run);
the synthetic table's output dataset (each column sampled from a model fitted on the
gate-passed candidate's columns: DIRECT/AGGREGATION, masked); and the facet's ``utility``
field (the utility report's metrics).

Pure: the manifest's ``releases`` entry in, facets out.
"""

from __future__ import annotations

from typing import Any

from openlineage.client.facet_v2 import column_lineage_dataset

from veilflow.lineage.facets import PRODUCER, schema_facet
from veilflow.lineage.naming import DatasetRef
from veilflow.zones.manifest import RunManifest


def release_entries(manifest: RunManifest) -> list[dict[str, Any]]:
    """The releases a publish wrote (those a retried publish found done carry less)."""
    return list((manifest.releases or {}).get("releases") or [])


def _describe(r: dict[str, Any]) -> str:
    what = r.get("statistic", "aggregate")
    if r.get("column"):
        what += f" of {r['column']}"
    if r.get("group_by"):
        what += f" by {', '.join(r['group_by'])}"
    noise = f"{r['mechanism']} noise, scale {r['scale']:g}" if r.get("mechanism") else "noise"
    delta = f", δ={r['delta']:g}" if r.get("delta") else ""
    return f"differentially private {what} (ε={r['epsilon']:g}{delta}; {noise})"


def _value_column(r: dict[str, Any]) -> str:
    return "count" if r.get("statistic") == "histogram" else str(r.get("statistic"))


def release_columns(r: dict[str, Any]) -> list[tuple[str, str]]:
    cols = [(g, "text") for g in r.get("group_by") or []]
    if r.get("statistic") == "histogram":
        cols += [("bin_lower", "double precision"), ("bin_upper", "double precision")]
    kind = "bigint" if r.get("statistic") in ("count", "histogram") else "double precision"
    return [*cols, (_value_column(r), kind)]


def release_lineage(
    r: dict[str, Any], source: DatasetRef
) -> column_lineage_dataset.ColumnLineageDatasetFacet:
    def field(
        name: str, t: column_lineage_dataset.Transformation
    ) -> column_lineage_dataset.InputField:
        return column_lineage_dataset.InputField(
            namespace=source.namespace, name=source.name, field=name, transformations=[t]
        )

    groups = list(r.get("group_by") or [])
    aggregation = column_lineage_dataset.Transformation(
        type="DIRECT", subtype="AGGREGATION", description=_describe(r), masking=True
    )
    grouping = column_lineage_dataset.Transformation(
        type="INDIRECT", subtype="GROUP_BY", description="declared group values", masking=False
    )
    measured = [r["column"]] if r.get("column") else []
    fields: dict[str, column_lineage_dataset.Fields] = {
        _value_column(r): column_lineage_dataset.Fields(
            inputFields=[field(c, aggregation) for c in measured]
            + [field(g, grouping) for g in groups],
            transformationDescription=aggregation.description,
            transformationType="AGGREGATION",
        )
    }
    for g in groups:
        fields[g] = column_lineage_dataset.Fields(
            inputFields=[field(g, grouping)],
            transformationDescription="the declared group values (never read from the data)",
            transformationType="IDENTITY",
        )
    if r.get("statistic") == "histogram" and measured:
        for edge in ("bin_lower", "bin_upper"):
            fields[edge] = column_lineage_dataset.Fields(
                inputFields=[field(measured[0], grouping)],
                transformationDescription="the declared bin edges",
                transformationType="IDENTITY",
            )
    return column_lineage_dataset.ColumnLineageDatasetFacet(fields=fields, producer=PRODUCER)


def release_facets(r: dict[str, Any], source: DatasetRef) -> dict[str, Any]:
    """Dataset facets of one release's output: its schema and column lineage."""
    return {
        "schema": schema_facet([(n, t) for n, t in release_columns(r)]),
        "columnLineage": release_lineage(r, source),
    }


def dp_field(manifest: RunManifest) -> dict[str, Any] | None:
    """The veilflow run facet's ``differentialPrivacy`` field (None without releases)."""
    dp = manifest.releases
    if not dp:
        return None
    out: dict[str, Any] = {
        "epsilonSpent": float(dp.get("epsilon_spent") or 0.0),
        "deltaSpent": float(dp.get("delta_spent") or 0.0),
        "releases": [],
    }
    b = dp.get("budget")
    if b:
        out["budget"] = {
            "epsilonTotal": float(b["epsilon_total"]),
            "deltaTotal": float(b["delta_total"]),
            "epsilonRemaining": float(b["epsilon_remaining"]),
            "deltaRemaining": float(b["delta_remaining"]),
        }
    for r in release_entries(manifest):
        entry: dict[str, Any] = {"name": r["name"], "table": r["table"], "epsilon": r["epsilon"]}
        for key, name in (
            ("statistic", "statistic"),
            ("column", "column"),
            ("group_by", "groupBy"),
            ("cells", "cells"),
            ("delta", "delta"),
            ("mechanism", "mechanism"),
            ("sensitivity", "sensitivity"),
            ("scale", "scale"),
        ):
            if r.get(key) is not None:
                entry[name] = r[key]
        out["releases"].append(entry)
    return out


def utility_field(manifest: RunManifest) -> dict[str, Any] | None:
    """The veilflow run facet's ``utility`` field: the metrics of the utility report."""
    u = manifest.utility
    if not u:
        return None
    out: dict[str, Any] = {"target": str(u.get("target", ""))}
    if u.get("error"):
        out["error"] = str(u["error"])
        return out
    scores = ("accuracy", "auc")
    out.update(
        model=str(u.get("model", "")),
        features=[str(f) for f in u.get("features") or []],
        records={k: int(v) for k, v in (u.get("records") or {}).items() if k in ("train", "test")},
        variants={
            name: {k: float(v[k]) for k in scores if k in v}
            for name, v in (u.get("variants") or {}).items()
        },
        cost={k: float(v) for k, v in (u.get("cost") or {}).items() if k in scores},
    )
    return out


def synthetic_entry(manifest: RunManifest) -> dict[str, Any] | None:
    """The synthetic table a publish wrote (None when there is none, or it was quarantined)."""
    s = manifest.synthetic
    if not s or s.get("quarantined_as") or not s.get("table"):
        return None
    return dict(s)


def synthetic_facets(
    s: dict[str, Any], candidate: DatasetRef, types: dict[str, str | None]
) -> dict[str, Any]:
    """Dataset facets of the synthetic table: its schema (the candidate's types of its
    columns) and column lineage. Every synthetic column is sampled from one model of the
    joint distribution of all the synthesized columns, so each lists all of them."""
    cols = [str(c) for c in s.get("columns") or []]
    description = (
        f"sampled from a {s.get('synthesizer', 'synthesizer')} fitted on"
        f" {int(s.get('trained_on') or 0):,} gate-passed rows of {', '.join(cols)};"
        " no row of the source"
    )
    sampled = column_lineage_dataset.Transformation(
        type="DIRECT", subtype="AGGREGATION", description=description, masking=True
    )
    inputs = [
        column_lineage_dataset.InputField(
            namespace=candidate.namespace, name=candidate.name, field=c, transformations=[sampled]
        )
        for c in cols
    ]
    fields = {
        c: column_lineage_dataset.Fields(
            inputFields=inputs,
            transformationDescription=description,
            transformationType="AGGREGATION",
        )
        for c in cols
    }
    return {
        "schema": schema_facet([(c, types.get(c)) for c in cols]),
        "columnLineage": column_lineage_dataset.ColumnLineageDatasetFacet(
            fields=fields, producer=PRODUCER
        ),
    }
