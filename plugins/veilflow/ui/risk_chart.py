"""A dataset's re-identification risk from run to run as inline SVG: one line per estimate
(prosecutor, source before suppression, linkage), the policy's thresholds as dashed rules,
refused runs marked in red.

Pure: points in, markup out (every text escaped), drawn like the lineage graph.
"""

from __future__ import annotations

from collections.abc import Sequence

from markupsafe import Markup, escape

from veilflow.privacy.history import RiskPoint

WIDTH, HEIGHT = 720, 280
LEFT, RIGHT, TOP, BOTTOM = 56, 150, 20, 40

#: Estimate -> (label, colour, dash pattern).
SERIES = {
    "prosecutor_risk": ("prosecutor", "#b26a00", ""),
    "source_risk": ("source (before suppression)", "#55606e", "5,4"),
    "linkage_risk": ("linkage", "#2e5aac", "2,3"),
}
REFUSED = "#c62828"


def _value(p: RiskPoint, name: str) -> float | None:
    v = getattr(p, name)
    return None if v is None else float(v)


def risk_chart(
    points: Sequence[RiskPoint], thresholds: dict[str, float] | None = None, *, title: str = ""
) -> Markup:
    """The SVG of ``points`` (oldest first); an empty note when there are none."""
    if not points:
        return Markup('<p class="muted">No risk recorded for this dataset yet.</p>')
    thresholds = thresholds or {}
    values = [v for p in points for n in SERIES if (v := _value(p, n)) is not None]
    top = max([*values, *thresholds.values(), 0.01]) * 1.1
    top = min(1.0, top) if top <= 1.0 else top
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM

    def x(i: int) -> float:
        return LEFT + (plot_w / 2 if len(points) == 1 else i * plot_w / (len(points) - 1))

    def y(v: float) -> float:
        return TOP + plot_h * (1 - v / top)

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="risk-chart" role="img" width="{WIDTH}" '
        f'height="{HEIGHT}" viewBox="0 0 {WIDTH} {HEIGHT}" '
        f'aria-label="{escape(title or "re-identification risk over time")}">',
        f'<line x1="{LEFT}" y1="{TOP + plot_h}" x2="{LEFT + plot_w}" y2="{TOP + plot_h}" '
        'stroke="#6b7785"/>',
        f'<line x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{TOP + plot_h}" stroke="#6b7785"/>',
    ]
    for frac in (0.0, 0.25, 0.5, 0.75, 1.0):
        v = top * frac
        parts.append(
            f'<text class="tick" x="{LEFT - 6}" y="{y(v) + 4:.0f}" text-anchor="end">{v:.1%}</text>'
        )
    for name, limit in thresholds.items():
        label, colour, _ = SERIES.get(name, (name, REFUSED, ""))
        parts.append(
            f'<g class="threshold"><title>{escape(f"policy threshold on {label}: {limit:.2%}")}'
            f'</title><line x1="{LEFT}" y1="{y(limit):.1f}" x2="{LEFT + plot_w}" '
            f'y2="{y(limit):.1f}" stroke="{REFUSED}" stroke-dasharray="6,3"/>'
            f'<text x="{LEFT + plot_w + 6}" y="{y(limit) + 4:.0f}" fill="{REFUSED}">'
            f"max {escape(label)}</text></g>"
        )
    for row, (name, (label, colour, dash)) in enumerate(SERIES.items()):
        coords = [(x(i), y(v)) for i, p in enumerate(points) if (v := _value(p, name)) is not None]
        if not coords:
            continue
        path = " ".join(
            f"{'M' if j == 0 else 'L'}{cx:.1f},{cy:.1f}" for j, (cx, cy) in enumerate(coords)
        )
        dash_attr = f' stroke-dasharray="{dash}"' if dash else ""
        parts.append(
            f'<path class="series {name}" d="{path}" fill="none" stroke="{colour}" '
            f'stroke-width="1.8"{dash_attr}/>'
        )
        ly = TOP + 14 + row * 18
        parts.append(
            f'<line x1="{LEFT + plot_w + 30}" y1="{ly + 40}" x2="{LEFT + plot_w + 50}" '
            f'y2="{ly + 40}" stroke="{colour}" stroke-width="1.8"{dash_attr}/>'
            f'<text x="{LEFT + plot_w + 54}" y="{ly + 44}">{escape(label.split(" ")[0])}</text>'
        )
    for i, p in enumerate(points):
        v = p.prosecutor_risk
        fill = REFUSED if not p.passed else SERIES["prosecutor_risk"][1]
        linkage = "n/a" if p.linkage_risk is None else f"{p.linkage_risk:.2%}"
        tip = (
            f"run {p.run_id} ({p.measured_at:%Y-%m-%d %H:%M}): {p.rows:,} rows, k={p.k}, "
            f"prosecutor {v:.2%}, source {p.source_risk:.2%}, linkage {linkage}, "
            + ("passed" if p.passed else "refused by the gate")
        )
        parts.append(
            f'<g class="run {"refused" if not p.passed else "passed"}"><title>{escape(tip)}</title>'
            f'<circle cx="{x(i):.1f}" cy="{y(v):.1f}" r="4" fill="{fill}"/></g>'
        )
        parts.append(
            f'<text class="tick" x="{x(i):.0f}" y="{TOP + plot_h + 16}" text-anchor="middle">'
            f"{p.measured_at:%m-%d %H:%M}</text>"
        )
    parts.append("</svg>")
    return Markup("".join(parts))  # noqa: S704 - every interpolated text is escaped above
