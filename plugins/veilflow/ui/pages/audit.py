"""Audit: the audit log with filters, and verifying its hash chain."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from veilflow.ui.auth import AuthError, require
from veilflow.ui.context import CurrentViewer, Ui, blank, day
from veilflow.vault import access as vault_access
from veilflow.vault.audit import AuditFilter, audit_entries, verify

router = APIRouter()

AUDIT_OUTCOMES = ("ok", "denied", "error")


@router.get("/audit", response_class=HTMLResponse)
def audit_index(
    request: Request,
    who: CurrentViewer,
    app: Ui,
    action: str = "",
    actor: str = "",
    target: str = "",
    outcome: str = "",
    since: str = "",
    until: str = "",
    airflow_user: str = "",
    verify_chain: str = "",
    limit: int = 200,
) -> Response:
    require(who, "audit")
    if verify_chain:
        require(who, "audit.verify")
    out = blank(outcome)
    if out is not None and out not in AUDIT_OUTCOMES:
        raise AuthError(400, f"unknown outcome; one of {', '.join(AUDIT_OUTCOMES)}")
    flt = AuditFilter(
        action=blank(action),
        actor=blank(actor),
        target=blank(target),
        outcome=out,
        since=day(since),
        until=day(until),
        airflow_user=blank(airflow_user),
    )
    with app.db(who, "audit") as conn:
        vault_access.require(conn, "audit.read", action="audit.tail", target="governance.audit_log")
        entries = audit_entries(conn, flt, limit=min(max(limit, 1), 2000))
    chain = None
    if verify_chain:
        with app.db(who, "audit.verify") as conn:
            chain = verify(conn)
    return app.page(
        request,
        "audit.html",
        who,
        entries=entries,
        flt=flt,
        chain=chain,
        outcomes=AUDIT_OUTCOMES,
        limit=limit,
    )
