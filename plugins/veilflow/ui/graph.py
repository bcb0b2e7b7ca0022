"""The column-level lineage graph as inline SVG: restricted column → operator + key version →
anonymized column, one row per output column, coloured by GDPR class.

Pure: edges in, markup out (every text escaped). The layout is three fixed lanes; input
columns that feed several outputs are drawn once and fan out.
"""

from __future__ import annotations

from collections.abc import Sequence

from markupsafe import Markup, escape

from veilflow.lineage.view import ColumnEdge

ROW = 34
BOX_H = 24
LANE_W = (250, 320, 250)
GAP = 90
PAD = 12
HEAD = 30

#: GDPR class -> (fill, stroke). Identity copies of raw data stand out.
COLOURS = {
    "anonymous": ("#e6f4ea", "#2e7d32"),
    "pseudonymous": ("#fff4e0", "#b26a00"),
    "identifiable": ("#fde8e8", "#c62828"),
}
DEFAULT_COLOUR = ("#eef1f5", "#55606e")


def _colour(edge: ColumnEdge) -> tuple[str, str]:
    if edge.gdpr_class in COLOURS:
        return COLOURS[edge.gdpr_class]
    if not edge.masking:
        return COLOURS["identifiable"]
    return DEFAULT_COLOUR


def _clip(text: str, width: int) -> str:
    limit = max(4, (width - 16) // 8)  # monospace at ~7.6 px a character, inner padding
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _box(
    x: int, y: int, w: int, label: str, *, fill: str, stroke: str, title: str, css: str
) -> str:
    return (
        f'<g class="{css}"><title>{escape(title)}</title>'
        f'<rect x="{x}" y="{y}" width="{w}" height="{BOX_H}" rx="5" fill="{fill}" '
        f'stroke="{stroke}"/>'
        f'<text x="{x + 8}" y="{y + BOX_H / 2 + 4:.0f}">{escape(_clip(label, w - 12))}'
        f"</text></g>"
    )


def _curve(x1: int, y1: float, x2: int, y2: float, stroke: str) -> str:
    mid = (x1 + x2) / 2
    return (
        f'<path d="M{x1},{y1:.0f} C{mid:.0f},{y1:.0f} {mid:.0f},{y2:.0f} {x2},{y2:.0f}" '
        f'fill="none" stroke="{stroke}" stroke-width="1.4" marker-end="url(#vf-arrow)"/>'
    )


def column_graph(edges: Sequence[ColumnEdge], *, title: str = "") -> Markup:
    """The SVG of ``edges`` (an empty note when there are none)."""
    if not edges:
        return Markup('<p class="muted">No column lineage in this event.</p>')
    inputs: dict[str, int] = {}
    for e in edges:
        inputs.setdefault(f"{e.input_table}.{e.input_column}", len(inputs))
    rows = max(len(edges), len(inputs))
    x_in = PAD
    x_op = x_in + LANE_W[0] + GAP
    x_out = x_op + LANE_W[1] + GAP
    width = x_out + LANE_W[2] + PAD
    height = HEAD + rows * ROW + PAD

    def y_of(i: int) -> int:
        return HEAD + i * ROW

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="lineage-graph" role="img" '
        f'width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
        f'aria-label="{escape(title or "column lineage")}">',
        '<defs><marker id="vf-arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" '
        'markerHeight="7" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" '
        'fill="#6b7785"/></marker></defs>',
    ]
    out_tables = sorted({e.output_table for e in edges})
    in_tables = sorted({e.input_table for e in edges})
    for x, label in (
        (x_in, ", ".join(in_tables)),
        (x_op, "operator · key version"),
        (x_out, ", ".join(out_tables)),
    ):
        parts.append(
            f'<text class="lane" x="{x}" y="18">{escape(_clip(label, LANE_W[0] + GAP))}</text>'
        )
    for name, i in inputs.items():
        parts.append(
            _box(
                x_in,
                y_of(i),
                LANE_W[0],
                name.rsplit(".", 1)[-1],
                fill="#fdf0f0",
                stroke="#a94442",
                css="vf-in",
                title=f"{name} (restricted zone: raw personal data)",
            )
        )
    for i, e in enumerate(edges):
        fill, stroke = _colour(e)
        src_y = y_of(inputs[f"{e.input_table}.{e.input_column}"]) + BOX_H / 2
        y = y_of(i)
        op_label = e.operator + (f" · {e.key}" if e.key else "")
        gdpr = f"{e.gdpr_class}: {e.gdpr_reason}" if e.gdpr_class else ""
        parts.append(_curve(x_in + LANE_W[0], src_y, x_op, y + BOX_H / 2, stroke))
        parts.append(
            _box(
                x_op,
                y,
                LANE_W[1],
                op_label,
                fill=fill,
                stroke=stroke,
                css="vf-op",
                title=f"{e.description} ({e.transformation}, masking={str(e.masking).lower()})",
            )
        )
        parts.append(_curve(x_op + LANE_W[1], y + BOX_H / 2, x_out, y + BOX_H / 2, stroke))
        parts.append(
            _box(
                x_out,
                y,
                LANE_W[2],
                e.column,
                fill=fill,
                stroke=stroke,
                css="vf-out",
                title=f"{e.output_table}.{e.column} — {gdpr}",
            )
        )
    parts.append("</svg>")
    return Markup("".join(parts))  # noqa: S704 - every interpolated text is escaped above
