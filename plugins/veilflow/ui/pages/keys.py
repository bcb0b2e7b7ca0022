"""Keys: the data-key inventory (versions and states, never material) and rotation."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from starlette.concurrency import run_in_threadpool

from veilflow.errors import AccessDenied, DatabaseUnavailable, KeyNotFound, VeilflowError
from veilflow.transform.keys import parse_key_ref
from veilflow.ui import queries
from veilflow.ui.auth import Viewer
from veilflow.ui.context import CurrentViewer, Notice, Ui, UiContext, same_origin_form
from veilflow.ui.roles import UiConfigError
from veilflow.vault import access as vault_access

router = APIRouter()


def _keys_page(
    app: UiContext, request: Request, who: Viewer, notice: Notice = Notice()
) -> HTMLResponse:
    with app.db(who, "keys") as conn:
        vault_access.require(conn, "keys.list", action="keys.list", target="*")
        rows = queries.key_inventory(conn)
    keys: dict[str, list[queries.KeyRow]] = {}
    for r in rows:
        keys.setdefault(r.key_id, []).append(r)
    return app.page(
        request,
        "keys.html",
        who,
        http_status=notice.status,
        keys=keys,
        message=notice.message,
        error=notice.error,
    )


@router.get("/keys", response_class=HTMLResponse)
def keys_index(request: Request, who: CurrentViewer, app: Ui) -> Response:
    return _keys_page(app, request, who)


def _rotate(app: UiContext, request: Request, who: Viewer, form: dict[str, str]) -> Response:
    from veilflow.vault.keys import rotate_key
    from veilflow.vault.master import default_master_key

    key = (form.get("key") or "").strip()
    app.guard(who, "keys.rotate", "ui.key.rotate", key)
    try:
        dataset, purpose, version = parse_key_ref(key)
        if version is not None:
            raise KeyNotFound(f"{key}: rotate a key, not a version")
        with app.db(who, "keys.rotate") as conn:
            vault_access.require(conn, "keys.manage", action="key.rotate", target=key)
            new = rotate_key(conn, default_master_key(create=False), dataset, purpose)
    except (UiConfigError, DatabaseUnavailable):
        raise
    except VeilflowError as exc:
        denied = isinstance(exc, AccessDenied)
        app.audit_attempt(
            who, "ui.key.rotate", key, "denied" if denied else "error", reason=str(exc)
        )
        return _keys_page(app, request, who, Notice(error=str(exc), status=403 if denied else 400))
    app.audit_attempt(who, "ui.key.rotate", key, "ok", version=new.version)
    return _keys_page(app, request, who, Notice(message=f"Rotated {key}: {new.ref} is active."))


@router.post("/keys/rotate", response_class=HTMLResponse)
async def keys_rotate(request: Request, who: CurrentViewer, app: Ui) -> Response:
    form = await same_origin_form(request, who)
    return await run_in_threadpool(_rotate, app, request, who, form)
