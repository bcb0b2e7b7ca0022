"""The SVG column graph: one lane per side, every output column drawn, text escaped."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

from veilflow.lineage.view import ColumnEdge
from veilflow.ui.graph import column_graph

SVG = "{http://www.w3.org/2000/svg}"


def edge(
    column: str,
    operator: str = "tokenize",
    key: str | None = "t/token@v3",
    source: str | None = None,
    gdpr: str | None = "pseudonymous",
) -> ColumnEdge:
    return ColumnEdge(
        output_table="anonymized.t",
        column=column,
        input_table="restricted.t",
        input_column=source or column,
        operator=operator,
        description=f"{operator} of {column}",
        transformation="DIRECT/TRANSFORMATION",
        masking=operator != "keep",
        key=key,
        gdpr_class=gdpr,
        gdpr_reason="because",
    )


def parse(markup: str) -> ET.Element:
    return ET.fromstring(markup)


def test_every_edge_becomes_input_operator_and_output_boxes() -> None:
    edges = [
        edge("email"),
        edge("zip", "generalize", None, gdpr="anonymous"),
        edge("ward", "keep", None, gdpr=None),
        edge("email_domain", source="email"),
    ]
    root = parse(str(column_graph(edges)))
    texts = [t.text for t in root.iter(f"{SVG}text")]
    assert texts[:3] == ["restricted.t", "operator · key version", "anonymized.t"]
    inputs = [
        t.text
        for g in root.iter(f"{SVG}g")
        if g.get("class") == "vf-in"
        for t in g.iter(f"{SVG}text")
    ]
    outputs = [
        t.text
        for g in root.iter(f"{SVG}g")
        if g.get("class") == "vf-out"
        for t in g.iter(f"{SVG}text")
    ]
    ops = [
        t.text
        for g in root.iter(f"{SVG}g")
        if g.get("class") == "vf-op"
        for t in g.iter(f"{SVG}text")
    ]
    assert inputs == ["email", "zip", "ward"]  # email feeds two outputs, drawn once
    assert outputs == ["email", "zip", "ward", "email_domain"]
    assert ops == ["tokenize · t/token@v3", "generalize", "keep", "tokenize · t/token@v3"]
    assert len(list(root.iter(f"{SVG}path"))) == 1 + 2 * len(edges)  # arrow head + 2 per edge
    # raw value kept (not masking, no class) is drawn in the "identifiable" red
    keep = [g for g in root.iter(f"{SVG}g") if g.get("class") == "vf-op"][2]
    assert keep.find(f"{SVG}rect").get("stroke") == "#c62828"  # type: ignore[union-attr]


def test_names_are_escaped_and_long_labels_clipped() -> None:
    markup = str(column_graph([edge("<script>alert(1)</script>" + "x" * 60)]))
    assert "<script>" not in markup and "&lt;script&gt;" in markup
    root = parse(markup)
    out = next(
        t.text
        for g in root.iter(f"{SVG}g")
        if g.get("class") == "vf-out"
        for t in g.iter(f"{SVG}text")
    )
    assert out is not None and out.endswith("…") and len(out) < 40
    title = next(
        t.text
        for g in root.iter(f"{SVG}g")
        if g.get("class") == "vf-out"
        for t in g.iter(f"{SVG}title")
    )
    assert title is not None and "x" * 60 in title  # the full name stays in the tooltip


def test_no_edges_no_svg() -> None:
    assert not re.search("<svg", str(column_graph([])))
