"""Risk over time: a dataset's re-identification risk from run to run, plotted as SVG."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from veilflow.privacy.history import risk_history
from veilflow.ui.context import CurrentViewer, Ui
from veilflow.ui.risk_chart import risk_chart

router = APIRouter()


@router.get("/risk/{dataset}", response_class=HTMLResponse)
def risk_page(request: Request, dataset: str, who: CurrentViewer, app: Ui) -> Response:
    with app.db(who, "runs") as conn:
        points = risk_history(conn, dataset)
    thresholds = dict(points[-1].details.get("thresholds") or {}) if points else {}
    return app.page(
        request,
        "risk.html",
        who,
        dataset=dataset,
        points=list(reversed(points)),
        chart=risk_chart(points, thresholds, title=f"{dataset} re-identification risk"),
        risk_k=points[-1].details.get("risk_k") if points else None,
        thresholds=thresholds,
    )
