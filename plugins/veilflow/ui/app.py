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
"""

from __future__ import annotations

import logging
import mimetypes
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import psycopg
from fastapi import Depends, FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.concurrency import run_in_threadpool

from veilflow.errors import AccessDenied, DatabaseUnavailable, KeyNotFound, VeilflowError
from veilflow.lineage.view import run_lineage
from veilflow.ui import queries
from veilflow.ui.auth import (
    AuthError,
    TokenResolver,
    Viewer,
    authenticate,
    check_same_origin,
    require,
)
from veilflow.ui.graph import column_graph
from veilflow.ui.roles import RULES, Connect, RoleMap, UiConfigError, acting_as
from veilflow.vault import access as vault_access
from veilflow.vault.audit import record, verify
from veilflow.zones import access as zone_access

log = logging.getLogger(__name__)

TEMPLATES = Path(__file__).parent / "templates"
#: (dataset, veilflow run id) -> the run's page in Airflow (path from the Airflow root), or None.
RunLink = Callable[[str, str], str | None]

PAGES = (
    ("lineage", "Lineage"),
    ("runs", "Runs"),
    ("access", "Access"),
    ("keys", "Keys"),
    ("audit", "Audit"),
)
RUN_STATUSES = ("running", "published", "quarantined", "failed")
AUDIT_OUTCOMES = ("ok", "denied", "error")
PAGE_SIZE = 100


def _default_connect() -> psycopg.Connection:
    from veilflow.zones.db import connect

    return connect(autocommit=True, duty="ui")


def _environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(str(TEMPLATES)),
        autoescape=select_autoescape(["html"]),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["when"] = lambda d: "" if d is None else f"{d:%Y-%m-%d %H:%M:%S}"
    env.filters["short"] = lambda h, n=12: (h or "")[:n]
    env.filters["q"] = lambda s: quote(str(s), safe="")
    return env


def _day(value: str | None) -> date | None:
    if not value:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise AuthError(400, f"not a date (YYYY-MM-DD): {value[:20]!r}") from None


def _blank(value: str | None) -> str | None:
    value = (value or "").strip()
    return value or None


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
    connect_db = connect or _default_connect
    env = _environment()
    app = FastAPI(title="veilflow governance", docs_url=None, redoc_url=None, openapi_url=None)
    try:
        role_map = roles if roles is not None else RoleMap.from_env()
        misconfigured: str | None = None
    except UiConfigError as exc:  # fail closed: no page until the configuration is fixed
        role_map, misconfigured = RoleMap(), str(exc)
        log.error("veilflow UI refuses every request: %s", misconfigured)

    async def viewer(request: Request) -> Viewer:
        who = await authenticate(request, resolve_user, role_map)
        if misconfigured:
            raise UiConfigError(misconfigured)
        request.state.viewer = who  # for the navigation of error pages
        return who

    @contextmanager
    def db(who: Viewer, action: str) -> Iterator[psycopg.Connection]:
        """The work of ``action`` for ``who``: one transaction as the group role its rule
        chooses for them (403 first when they may not)."""
        group = require(who, action)
        with acting_as(connect_db, group, read_only=RULES[action].read_only) as conn:
            yield conn

    def nav(who: Viewer | None) -> list[tuple[str, str]]:
        return [(slug, label) for slug, label in PAGES if who is not None and who.can(slug)]

    def page(
        request: Request, template: str, who: Viewer, http_status: int = 200, **ctx: Any
    ) -> HTMLResponse:
        base = request.scope.get("root_path", "")
        html = env.get_template(template).render(
            base=base,
            viewer=who,
            pages=nav(who),
            can=who.can,
            airflow_root=airflow_root,
            current=template.split(".")[0],
            **ctx,
        )
        return HTMLResponse(html, status_code=http_status)

    def audit_ui(
        conn: psycopg.Connection,
        who: Viewer,
        action: str,
        target: str,
        outcome: str,
        **details: Any,
    ) -> None:
        """The Airflow side of an act: which Airflow user asked, through the UI. Recorded
        through the login's own audit entry point (any login may append), never a page's
        group role."""
        try:
            record(
                conn,
                action,
                target=target,
                outcome=outcome,
                details={"airflow_user": who.username, "via": "ui", **details},
            )
        except psycopg.Error as exc:  # the act's own audit row (by the database) stands
            log.error(
                "could not audit %s by Airflow user %s: %s",
                action,
                who.username,
                type(exc).__name__,
            )

    def audit_attempt(who: Viewer, action: str, target: str, outcome: str, **details: Any) -> None:
        with connect_db() as conn:
            audit_ui(conn, who, action, target, outcome, **details)

    @app.exception_handler(AuthError)
    async def _auth_error(request: Request, exc: AuthError) -> Response:
        base = request.scope.get("root_path", "")
        who: Viewer | None = getattr(request.state, "viewer", None)
        html = env.get_template("error.html").render(
            base=base,
            viewer=who,
            pages=nav(who),
            current="",
            problem=exc.message,
            status=exc.status,
            airflow_root=airflow_root,
        )
        headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
        return HTMLResponse(html, status_code=exc.status, headers=headers)

    @app.exception_handler(VeilflowError)
    async def _domain_error(request: Request, exc: VeilflowError) -> Response:
        status = (
            403
            if isinstance(exc, AccessDenied)
            else 503
            if isinstance(exc, DatabaseUnavailable)
            else 500
            if isinstance(exc, UiConfigError)
            else 404
            if isinstance(exc, KeyNotFound)
            else 400
        )
        return await _auth_error(request, AuthError(status, str(exc)))

    # ------------------------------------------------------------------- lineage
    @app.get("/", include_in_schema=False)
    def home(request: Request, who: Viewer = Depends(viewer)) -> Response:
        first = next((slug for slug, _ in nav(who)), "lineage")
        return RedirectResponse(f"{request.scope.get('root_path', '')}/{first}", 303)

    @app.get("/lineage", response_class=HTMLResponse)
    def lineage_index(
        request: Request,
        who: Viewer = Depends(viewer),
        policy: str = "",
        dataset: str = "",
        since: str = "",
        until: str = "",
    ) -> Response:
        require(who, "lineage")
        flt = queries.LineageFilter(policy=_blank(policy), since=_day(since), until=_day(until))
        if _blank(dataset):
            qs = urlencode(flt.query())
            return RedirectResponse(
                f"{request.scope.get('root_path', '')}/lineage/"
                f"{quote(dataset.strip(), safe='')}" + (f"?{qs}" if qs else ""),
                303,
            )
        with db(who, "lineage") as conn:
            datasets = queries.lineage_datasets(conn, flt)
        return page(request, "lineage.html", who, flt=flt, datasets=datasets)

    @app.get("/lineage/{dataset}", response_class=HTMLResponse)
    def lineage_dataset(
        request: Request,
        dataset: str,
        who: Viewer = Depends(viewer),
        run: str = "",
        policy: str = "",
        since: str = "",
        until: str = "",
        column: str = "",
        offset: int = 0,
    ) -> Response:
        require(who, "lineage")
        flt = queries.LineageFilter(
            policy=_blank(policy), dataset=dataset, since=_day(since), until=_day(until)
        )
        offset = max(0, offset)
        with db(who, "lineage") as conn:
            total, runs = queries.lineage_runs(conn, flt, limit=PAGE_SIZE, offset=offset)
            chosen = _blank(run) or (runs[0].run_id if runs else None)
            lineage = (
                run_lineage(conn, dataset, run_id=chosen, column=_blank(column)) if chosen else None
            )
        graph = column_graph(lineage.edges, title=f"{dataset} column lineage") if lineage else None
        links = {r.run_id: _run_link(r.run_id) for r in runs}
        return page(
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
            chosen_link=_run_link(chosen) if chosen else None,
            column=_blank(column),
        )

    def _run_link(run_id: str) -> str | None:
        if run_link is None or ":" not in run_id:
            return None
        dataset = run_id.split(":", 1)[0]
        path = run_link(dataset, run_id)
        return f"{airflow_root}{path}" if path else None

    # ------------------------------------------------------------------- runs
    @app.get("/runs", response_class=HTMLResponse)
    def runs_index(
        request: Request, who: Viewer = Depends(viewer), dataset: str = "", status: str = ""
    ) -> Response:
        require(who, "runs")
        st = _blank(status)
        if st is not None and st not in RUN_STATUSES:
            raise AuthError(400, f"unknown status; one of {', '.join(RUN_STATUSES)}")
        with db(who, "runs") as conn:
            rows = queries.runs(conn, dataset=_blank(dataset), status=st)
        return page(
            request,
            "runs.html",
            who,
            rows=rows,
            dataset=dataset,
            status=st or "",
            statuses=RUN_STATUSES,
            links={r.run_id: _run_link(r.run_id) for r in rows},
        )

    @app.get("/runs/view", response_class=HTMLResponse)
    def run_view(request: Request, run_id: str, who: Viewer = Depends(viewer)) -> Response:
        with db(who, "runs") as conn:
            detail = queries.run_detail(conn, run_id)
        if detail is None:
            raise AuthError(404, f"no run {run_id[:200]!r}")
        m = detail.manifest
        gate = m.get("gate") or {}
        docs = gate.get("data_docs")
        return page(
            request,
            "run.html",
            who,
            d=detail,
            m=m,
            gate=gate,
            checks=gate.get("checks") or [],
            columns=m.get("columns") or [],
            counters=m.get("counters") or {},
            key_versions=sorted({c["key"] for c in m.get("columns") or [] if c.get("key")}),
            docs_link=(
                f"{request.scope.get('root_path', '')}/data-docs/"
                f"{quote(run_id, safe='')}/{Path(docs).name}"
            )
            if docs
            else None,
            airflow_link=_run_link(run_id),
        )

    @app.get("/data-docs/{run_id}/{path:path}")
    def data_docs(run_id: str, path: str, who: Viewer = Depends(viewer)) -> Response:
        """The run's Great Expectations Data Docs site (its own files only)."""
        with db(who, "runs") as conn:
            detail = queries.run_detail(conn, run_id)
        docs = (detail.manifest.get("gate") or {}).get("data_docs") if detail else None
        if not docs:
            raise AuthError(404, "this run has no Data Docs")
        root = Path(str(docs).removeprefix("file://")).parent.resolve()
        target = (root / path).resolve()
        if not target.is_relative_to(root) or not target.is_file():
            raise AuthError(404, "no such Data Docs file")
        kind = mimetypes.guess_type(target.name)[0] or "application/octet-stream"
        return Response(target.read_bytes(), media_type=kind)

    # ------------------------------------------------------------------- access
    def _access_page(
        request: Request,
        who: Viewer,
        message: str | None = None,
        error: str | None = None,
        status: int = 200,
    ) -> HTMLResponse:
        with db(who, "access") as conn:
            grid = vault_access.list_access(conn)
            members = zone_access.members(conn)
            roles = queries.role_zones(conn)
        by_login: dict[str, dict[str, str]] = {}
        for z in grid:
            rights = (
                "read/write"
                if z.read and z.write
                else "read"
                if z.read
                else "write"
                if z.write
                else ""
            )
            by_login.setdefault(z.login, {})[z.zone] = rights
        via = {z.login: ("superuser" if z.superuser else ", ".join(z.via)) for z in grid}
        return page(
            request,
            "access.html",
            who,
            http_status=status,
            zones=zone_access.ZONES,
            shown_zones=("restricted", "anonymized", "quarantine"),
            by_login=by_login,
            via=via,
            members=members,
            roles=roles,
            role_names=list(zone_access.ROLES),
            message=message,
            error=error,
        )

    @app.get("/access", response_class=HTMLResponse)
    def access_index(request: Request, who: Viewer = Depends(viewer)) -> Response:
        return _access_page(request, who)

    async def _form(request: Request, who: Viewer) -> dict[str, str]:
        form = await request.form()
        values = {k: str(v) for k, v in form.items() if isinstance(v, str)}
        check_same_origin(request, who, values.get("form_token"))
        return values

    def _guard(who: Viewer, action: str, ui_action: str, target: str) -> None:
        """``require`` for a changing request; a refusal is audited with the Airflow user."""
        try:
            require(who, action)
        except AuthError as exc:
            audit_attempt(who, ui_action, target, "denied", reason=exc.message)
            raise

    def _membership(request: Request, who: Viewer, action: str, form: dict[str, str]) -> Response:
        verb = "grant" if action == "access.grant" else "revoke"
        login = (form.get("login") or "").strip()
        role = (form.get("role") or "").strip()
        target = f"{login} {role}"
        ui_action = f"ui.{action}"
        _guard(who, "access.change", ui_action, target)
        if not login or role not in zone_access.ROLES:
            raise AuthError(
                400, f"name a login and one of the roles {', '.join(zone_access.ROLES)}"
            )
        try:
            with db(who, "access.change") as conn:
                if verb == "grant":
                    changed = vault_access.grant(
                        conn, login, role, create=form.get("create") == "on"
                    )
                else:
                    changed = vault_access.revoke(conn, login, role)
        except (UiConfigError, DatabaseUnavailable):
            raise
        except VeilflowError as exc:
            denied = isinstance(exc, AccessDenied)
            audit_attempt(who, ui_action, target, "denied" if denied else "error", reason=str(exc))
            return _access_page(request, who, error=str(exc), status=403 if denied else 400)
        outcome_detail = {"login_created": changed} if verb == "grant" else {"was_member": changed}
        audit_attempt(
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
        return _access_page(request, who, message=msg)

    @app.post("/access/grant", response_class=HTMLResponse)
    async def access_grant(request: Request, who: Viewer = Depends(viewer)) -> Response:
        form = await _form(request, who)
        return await run_in_threadpool(_membership, request, who, "access.grant", form)

    @app.post("/access/revoke", response_class=HTMLResponse)
    async def access_revoke(request: Request, who: Viewer = Depends(viewer)) -> Response:
        form = await _form(request, who)
        return await run_in_threadpool(_membership, request, who, "access.revoke", form)

    # ------------------------------------------------------------------- keys
    def _keys_page(
        request: Request,
        who: Viewer,
        message: str | None = None,
        error: str | None = None,
        status: int = 200,
    ) -> HTMLResponse:
        with db(who, "keys") as conn:
            vault_access.require(conn, "keys.list", action="keys.list", target="*")
            rows = queries.key_inventory(conn)
        keys: dict[str, list[queries.KeyRow]] = {}
        for r in rows:
            keys.setdefault(r.key_id, []).append(r)
        return page(
            request, "keys.html", who, http_status=status, keys=keys, message=message, error=error
        )

    @app.get("/keys", response_class=HTMLResponse)
    def keys_index(request: Request, who: Viewer = Depends(viewer)) -> Response:
        return _keys_page(request, who)

    def _rotate(request: Request, who: Viewer, form: dict[str, str]) -> Response:
        from veilflow.transform.keys import parse_key_ref
        from veilflow.vault.keys import rotate_key
        from veilflow.vault.master import default_master_key

        key = (form.get("key") or "").strip()
        _guard(who, "keys.rotate", "ui.key.rotate", key)
        try:
            dataset, purpose, version = parse_key_ref(key)
            if version is not None:
                raise KeyNotFound(f"{key}: rotate a key, not a version")
            with db(who, "keys.rotate") as conn:
                vault_access.require(conn, "keys.manage", action="key.rotate", target=key)
                new = rotate_key(conn, default_master_key(create=False), dataset, purpose)
        except (UiConfigError, DatabaseUnavailable):
            raise
        except VeilflowError as exc:
            denied = isinstance(exc, AccessDenied)
            audit_attempt(
                who, "ui.key.rotate", key, "denied" if denied else "error", reason=str(exc)
            )
            return _keys_page(request, who, error=str(exc), status=403 if denied else 400)
        audit_attempt(who, "ui.key.rotate", key, "ok", version=new.version)
        return _keys_page(request, who, message=f"Rotated {key}: {new.ref} is active.")

    @app.post("/keys/rotate", response_class=HTMLResponse)
    async def keys_rotate(request: Request, who: Viewer = Depends(viewer)) -> Response:
        form = await _form(request, who)
        return await run_in_threadpool(_rotate, request, who, form)

    # ------------------------------------------------------------------- audit
    @app.get("/audit", response_class=HTMLResponse)
    def audit_index(
        request: Request,
        who: Viewer = Depends(viewer),
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
        out = _blank(outcome)
        if out is not None and out not in AUDIT_OUTCOMES:
            raise AuthError(400, f"unknown outcome; one of {', '.join(AUDIT_OUTCOMES)}")
        flt = queries.AuditFilter(
            action=_blank(action),
            actor=_blank(actor),
            target=_blank(target),
            outcome=out,
            since=_day(since),
            until=_day(until),
            airflow_user=_blank(airflow_user),
        )
        with db(who, "audit") as conn:
            vault_access.require(
                conn, "audit.read", action="audit.tail", target="governance.audit_log"
            )
            entries = queries.audit_entries(conn, flt, limit=min(max(limit, 1), 2000))
        chain = None
        if verify_chain:
            with db(who, "audit.verify") as conn:
                chain = verify(conn)
        return page(
            request,
            "audit.html",
            who,
            entries=entries,
            flt=flt,
            chain=chain,
            outcomes=AUDIT_OUTCOMES,
            limit=limit,
        )

    return app
