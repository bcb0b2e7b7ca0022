"""Runs: the list with filters, one run's manifest and gate, and its Data Docs files."""

from __future__ import annotations

import mimetypes
from pathlib import Path
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from veilflow.ui import queries
from veilflow.ui.auth import AuthError, require
from veilflow.ui.context import CurrentViewer, Ui, base_path, blank

router = APIRouter()

RUN_STATUSES = ("running", "published", "quarantined", "failed")


@router.get("/runs", response_class=HTMLResponse)
def runs_index(
    request: Request,
    who: CurrentViewer,
    app: Ui,
    dataset: str = "",
    status: str = "",
) -> Response:
    require(who, "runs")
    st = blank(status)
    if st is not None and st not in RUN_STATUSES:
        raise AuthError(400, f"unknown status; one of {', '.join(RUN_STATUSES)}")
    with app.db(who, "runs") as conn:
        rows = queries.runs(conn, dataset=blank(dataset), status=st)
    return app.page(
        request,
        "runs.html",
        who,
        rows=rows,
        dataset=dataset,
        status=st or "",
        statuses=RUN_STATUSES,
        links={r.run_id: app.airflow_link(r.run_id) for r in rows},
    )


@router.get("/runs/view", response_class=HTMLResponse)
def run_view(request: Request, run_id: str, who: CurrentViewer, app: Ui) -> Response:
    with app.db(who, "runs") as conn:
        detail = queries.run_detail(conn, run_id)
    if detail is None:
        raise AuthError(404, f"no run {run_id[:200]!r}")
    m = detail.manifest
    docs = m.gate.data_docs if m.gate else None
    return app.page(
        request,
        "run.html",
        who,
        d=detail,
        m=m,
        gate=m.gate,
        checks=m.gate.checks if m.gate else (),
        columns=m.columns,
        counters=m.counters or {},
        key_versions=m.key_refs,
        docs_link=(f"{base_path(request)}/data-docs/{quote(run_id, safe='')}/{Path(docs).name}")
        if docs
        else None,
        airflow_link=app.airflow_link(run_id),
    )


@router.get("/data-docs/{run_id}/{path:path}")
def data_docs(run_id: str, path: str, who: CurrentViewer, app: Ui) -> Response:
    """The run's Great Expectations Data Docs site (its own files only)."""
    with app.db(who, "runs") as conn:
        detail = queries.run_detail(conn, run_id)
    gate = detail.manifest.gate if detail else None
    docs = gate.data_docs if gate else None
    if not docs:
        raise AuthError(404, "this run has no Data Docs")
    root = Path(str(docs).removeprefix("file://")).parent.resolve()
    target = (root / path).resolve()
    if not target.is_relative_to(root) or not target.is_file():
        raise AuthError(404, "no such Data Docs file")
    kind = mimetypes.guess_type(target.name)[0] or "application/octet-stream"
    return Response(target.read_bytes(), media_type=kind)
