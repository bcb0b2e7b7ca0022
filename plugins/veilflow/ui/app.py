"""The governance UI app: lineage explorer, runs, access, keys and audit pages, rendered
server-side with Jinja2 from the governance tables.

``create_app`` takes who-is-asking (``TokenResolver``) and, optionally, how to link a run to
Airflow, from the caller: the Airflow plugin passes Airflow's auth manager and DAG naming,
tests pass doubles. Nothing here imports Airflow. Every request is authenticated and every
page and action checks the caller's veilflow roles (``veilflow.ui.roles``: 403 naming the
role needed); grant, revoke and rotate also need a same-origin form post, and are recorded in
the audit log with the Airflow user's name (the database records its own login as the actor).

The app reads and acts through ``connect()`` (default: ``veilflow.zones.db.connect``), as the
UI's PostgreSQL login, always inside ``roles.acting_as``: one transaction per request's work
with ``SET LOCAL ROLE`` to the group role the page's rule chooses for the caller (read-only
for pages), so a page cannot read more than its caller may. The vault's checks and the
database's own grants still apply to that role.

Each page is an ``APIRouter`` of its own in ``veilflow.ui.pages``; what they share (the
``viewer`` dependency, the per-request transaction, rendering, the UI's audit entries) is
``veilflow.ui.context``.
"""

from __future__ import annotations

import logging

import psycopg
from fastapi import Depends, FastAPI, Request
from fastapi.responses import RedirectResponse, Response

from veilflow.errors import AccessDenied, DatabaseUnavailable, KeyNotFound, VeilflowError
from veilflow.ui.auth import AuthError, TokenResolver, Viewer
from veilflow.ui.context import RunLink, UiContext, base_path, environment, viewer
from veilflow.ui.pages import access, audit, keys, lineage, risk, runs
from veilflow.ui.roles import Connect, RoleMap, UiConfigError

log = logging.getLogger(__name__)

#: Answer to a domain error that reaches the app, by its class (first match); 400 otherwise.
_ERROR_STATUS: tuple[tuple[type[VeilflowError], int], ...] = (
    (AccessDenied, 403),
    (DatabaseUnavailable, 503),
    (UiConfigError, 500),
    (KeyNotFound, 404),
)


def _default_connect() -> psycopg.Connection:
    from veilflow.zones.db import connect

    return connect(autocommit=True, duty="ui")


def create_app(
    resolve_user: TokenResolver,
    *,
    connect: Connect | None = None,
    run_link: RunLink | None = None,
    airflow_root: str = "",
    roles: RoleMap | None = None,
) -> FastAPI:
    """The UI as a FastAPI app, to mount under any prefix (the plugin uses ``/veilflow``).

    ``airflow_root``: the Airflow UI's path prefix (for links to DAG runs and the login).
    ``roles``: who gets which veilflow role (default: ``VEILFLOW_UI_ROLES``, read now; a
    malformed value makes every request answer 500 with the reason)."""
    misconfigured: str | None = None
    try:
        role_map = roles if roles is not None else RoleMap.from_env()
    except UiConfigError as exc:  # fail closed: no page until the configuration is fixed
        role_map, misconfigured = RoleMap(), str(exc)
        log.error("veilflow UI refuses every request: %s", misconfigured)
    context = UiContext(
        resolve_user=resolve_user,
        connect=connect or _default_connect,
        env=environment(),
        role_map=role_map,
        airflow_root=airflow_root,
        run_link=run_link,
        misconfigured=misconfigured,
    )
    app = FastAPI(title="veilflow governance", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.veilflow_ui = context

    @app.exception_handler(AuthError)
    async def _auth_error(request: Request, exc: AuthError) -> Response:
        return context.error_page(request, exc)

    @app.exception_handler(VeilflowError)
    async def _domain_error(request: Request, exc: VeilflowError) -> Response:
        status = next((s for kind, s in _ERROR_STATUS if isinstance(exc, kind)), 400)
        return context.error_page(request, AuthError(status, str(exc)))

    @app.get("/", include_in_schema=False)
    def home(request: Request, who: Viewer = Depends(viewer)) -> Response:
        first = next((slug for slug, _ in context.nav(who)), "lineage")
        return RedirectResponse(f"{base_path(request)}/{first}", 303)

    for page in (lineage, runs, risk, access, keys, audit):
        app.include_router(page.router)
    return app
