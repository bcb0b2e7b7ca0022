"""Access: who can read which zone, group memberships, and granting or revoking them."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from starlette.concurrency import run_in_threadpool

from veilflow.errors import AccessDenied, DatabaseUnavailable, VeilflowError
from veilflow.ui import queries
from veilflow.ui.auth import AuthError, Viewer
from veilflow.ui.context import CurrentViewer, Notice, Ui, UiContext, same_origin_form
from veilflow.ui.roles import UiConfigError
from veilflow.vault import access as vault_access
from veilflow.zones import access as zone_access

router = APIRouter()


def _rights(read: bool, write: bool) -> str:
    return "read/write" if read and write else "read" if read else "write" if write else ""


def _access_page(
    app: UiContext, request: Request, who: Viewer, notice: Notice = Notice()
) -> HTMLResponse:
    with app.db(who, "access") as conn:
        grid = vault_access.list_access(conn)
        members = zone_access.members(conn)
        roles = queries.role_zones(conn)
    by_login: dict[str, dict[str, str]] = {}
    for z in grid:
        by_login.setdefault(z.login, {})[z.zone] = _rights(z.read, z.write)
    via = {z.login: ("superuser" if z.superuser else ", ".join(z.via)) for z in grid}
    return app.page(
        request,
        "access.html",
        who,
        http_status=notice.status,
        zones=zone_access.ZONES,
        shown_zones=("restricted", "anonymized", "quarantine"),
        by_login=by_login,
        via=via,
        members=members,
        roles=roles,
        role_names=list(zone_access.ROLES),
        message=notice.message,
        error=notice.error,
    )


@router.get("/access", response_class=HTMLResponse)
def access_index(request: Request, who: CurrentViewer, app: Ui) -> Response:
    return _access_page(app, request, who)


def _membership(
    app: UiContext, request: Request, who: Viewer, action: str, form: dict[str, str]
) -> Response:
    verb = "grant" if action == "access.grant" else "revoke"
    login = (form.get("login") or "").strip()
    role = (form.get("role") or "").strip()
    target = f"{login} {role}"
    ui_action = f"ui.{action}"
    app.guard(who, "access.change", ui_action, target)
    if not login or role not in zone_access.ROLES:
        raise AuthError(400, f"name a login and one of the roles {', '.join(zone_access.ROLES)}")
    try:
        with app.db(who, "access.change") as conn:
            if verb == "grant":
                changed = vault_access.grant(conn, login, role, create=form.get("create") == "on")
            else:
                changed = vault_access.revoke(conn, login, role)
    except (UiConfigError, DatabaseUnavailable):
        raise
    except VeilflowError as exc:
        denied = isinstance(exc, AccessDenied)
        app.audit_attempt(who, ui_action, target, "denied" if denied else "error", reason=str(exc))
        return _access_page(
            app, request, who, Notice(error=str(exc), status=403 if denied else 400)
        )
    outcome_detail = {"login_created": changed} if verb == "grant" else {"was_member": changed}
    app.audit_attempt(
        who, ui_action, target, "ok", role=zone_access.group_role(role), **outcome_detail
    )
    if verb == "grant":
        msg = (
            f"Created login {login} and granted" if changed else "Granted"
        ) + f" {zone_access.group_role(role)} to {login}."
    else:
        msg = (
            f"Revoked {zone_access.group_role(role)} from {login}."
            if changed
            else f"{login} was not a member of {zone_access.group_role(role)}."
        )
    return _access_page(app, request, who, Notice(message=msg))


def _membership_route(action: str) -> Callable[..., Awaitable[Response]]:
    async def change(request: Request, who: CurrentViewer, app: Ui) -> Response:
        form = await same_origin_form(request, who)
        return await run_in_threadpool(_membership, app, request, who, action, form)

    return change


for _action in ("access.grant", "access.revoke"):
    router.add_api_route(
        "/" + _action.replace(".", "/"),
        _membership_route(_action),
        methods=["POST"],
        response_class=HTMLResponse,
    )
