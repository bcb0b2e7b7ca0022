"""The lineage explorer: datasets with lineage, and one dataset's runs and column graph."""

from __future__ import annotations

from urllib.parse import quote, urlencode

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from veilflow.lineage.view import run_lineage
from veilflow.ui import queries
from veilflow.ui.auth import require
from veilflow.ui.context import (
    PAGE_SIZE,
    CurrentViewer,
    Ui,
    base_path,
    blank,
    day,
)
from veilflow.ui.graph import column_graph

router = APIRouter()


@router.get("/lineage", response_class=HTMLResponse)
def lineage_index(
    request: Request,
    who: CurrentViewer,
    app: Ui,
    policy: str = "",
    dataset: str = "",
    since: str = "",
    until: str = "",
) -> Response:
    require(who, "lineage")
    flt = queries.LineageFilter(policy=blank(policy), since=day(since), until=day(until))
    if blank(dataset):
        qs = urlencode(flt.query())
        return RedirectResponse(
            f"{base_path(request)}/lineage/"
            f"{quote(dataset.strip(), safe='')}" + (f"?{qs}" if qs else ""),
            303,
        )
    with app.db(who, "lineage") as conn:
        datasets = queries.lineage_datasets(conn, flt)
    return app.page(request, "lineage.html", who, flt=flt, datasets=datasets)


@router.get("/lineage/{dataset}", response_class=HTMLResponse)
def lineage_dataset(
    request: Request,
    dataset: str,
    who: CurrentViewer,
    app: Ui,
    run: str = "",
    policy: str = "",
    since: str = "",
    until: str = "",
    column: str = "",
    offset: int = 0,
) -> Response:
    require(who, "lineage")
    flt = queries.LineageFilter(
        policy=blank(policy), dataset=dataset, since=day(since), until=day(until)
    )
    offset = max(0, offset)
    with app.db(who, "lineage") as conn:
        total, runs = queries.lineage_runs(conn, flt, limit=PAGE_SIZE, offset=offset)
        chosen = blank(run) or (runs[0].run_id if runs else None)
        lineage = (
            run_lineage(conn, dataset, run_id=chosen, column=blank(column)) if chosen else None
        )
    graph = column_graph(lineage.edges, title=f"{dataset} column lineage") if lineage else None
    links = {r.run_id: app.airflow_link(r.run_id) for r in runs}
    return app.page(
        request,
        "lineage_dataset.html",
        who,
        dataset=dataset,
        flt=flt,
        total=total,
        runs=runs,
        offset=offset,
        page_size=PAGE_SIZE,
        chosen=chosen,
        lineage=lineage,
        graph=graph,
        links=links,
        chosen_link=app.airflow_link(chosen) if chosen else None,
        column=blank(column),
    )
