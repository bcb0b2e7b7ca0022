"""What every page of the UI shares: the ``viewer`` dependency (who is asking, and the
fail-closed refusal of a misconfigured UI), one transaction per request's work as the group
role a page's rule chooses (``UiContext.db``), rendering with the navigation the caller may
see, and the audit of what a person did through the UI.

``create_app`` builds one ``UiContext`` and keeps it on ``app.state``; the page routers
(``veilflow.ui.pages``) reach it through the ``ui`` dependency, so they are plain module-level
``APIRouter``s.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

import psycopg
from fastapi import Depends, Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape

from veilflow.ui.auth import (
    AuthError,
    TokenResolver,
    Viewer,
    authenticate,
    check_same_origin,
    require,
)
from veilflow.ui.roles import RULES, Connect, RoleMap, UiConfigError, acting_as
from veilflow.vault.audit import record

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
PAGE_SIZE = 100


def environment() -> Environment:
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


def day(value: str | None) -> date | None:
    """A ``YYYY-MM-DD`` query parameter; 400 when it is not one."""
    if not value:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise AuthError(400, f"not a date (YYYY-MM-DD): {value[:20]!r}") from None


def blank(value: str | None) -> str | None:
    """A query parameter, None when empty or only spaces."""
    value = (value or "").strip()
    return value or None


def base_path(request: Request) -> str:
    """The prefix the app is mounted under (``/veilflow`` in Airflow)."""
    return str(request.scope.get("root_path", ""))


@dataclass(frozen=True)
class UiContext:
    """The app's configuration, fixed when it is built."""

    resolve_user: TokenResolver
    connect: Connect
    env: Environment
    role_map: RoleMap
    airflow_root: str = ""
    run_link: RunLink | None = None
    #: Why the UI refuses every request (a malformed role map), or None.
    misconfigured: str | None = None

    @contextmanager
    def db(self, who: Viewer, action: str) -> Iterator[psycopg.Connection]:
        """The work of ``action`` for ``who``: one transaction as the group role its rule
        chooses for them (403 first when they may not)."""
        group = require(who, action)
        with acting_as(self.connect, group, read_only=RULES[action].read_only) as conn:
            yield conn

    def nav(self, who: Viewer | None) -> list[tuple[str, str]]:
        return [(slug, label) for slug, label in PAGES if who is not None and who.can(slug)]

    def page(
        self, request: Request, template: str, who: Viewer, http_status: int = 200, **ctx: Any
    ) -> HTMLResponse:
        html = self.env.get_template(template).render(
            base=base_path(request),
            viewer=who,
            pages=self.nav(who),
            can=who.can,
            airflow_root=self.airflow_root,
            current=template.split(".")[0],
            **ctx,
        )
        return HTMLResponse(html, status_code=http_status)

    def error_page(self, request: Request, exc: AuthError) -> HTMLResponse:
        who: Viewer | None = getattr(request.state, "viewer", None)
        html = self.env.get_template("error.html").render(
            base=base_path(request),
            viewer=who,
            pages=self.nav(who),
            current="",
            problem=exc.message,
            status=exc.status,
            airflow_root=self.airflow_root,
        )
        headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
        return HTMLResponse(html, status_code=exc.status, headers=headers)

    def airflow_link(self, run_id: str) -> str | None:
        """The run's page in Airflow, when the app knows how to link there."""
        if self.run_link is None or ":" not in run_id:
            return None
        dataset = run_id.split(":", 1)[0]
        path = self.run_link(dataset, run_id)
        return f"{self.airflow_root}{path}" if path else None

    def audit_attempt(
        self, who: Viewer, action: str, target: str, outcome: str, **details: Any
    ) -> None:
        """The Airflow side of an act: which Airflow user asked, through the UI. Recorded
        through the login's own audit entry point (any login may append), never a page's
        group role."""
        with self.connect() as conn:
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

    def guard(self, who: Viewer, action: str, ui_action: str, target: str) -> None:
        """``require`` for a changing request; a refusal is audited with the Airflow user."""
        try:
            require(who, action)
        except AuthError as exc:
            self.audit_attempt(who, ui_action, target, "denied", reason=exc.message)
            raise


def ui(request: Request) -> UiContext:
    """The dependency that hands a page the app's ``UiContext``."""
    context: UiContext = request.app.state.veilflow_ui
    return context


async def viewer(request: Request) -> Viewer:
    """The dependency every page shares: who is asking (401 when nobody), refused while the
    UI is misconfigured."""
    context = ui(request)
    who = await authenticate(request, context.resolve_user, context.role_map)
    if context.misconfigured:
        raise UiConfigError(context.misconfigured)
    request.state.viewer = who  # for the navigation of error pages
    return who


async def same_origin_form(request: Request, who: Viewer) -> dict[str, str]:
    """A changing request's form, once its token proves it came from a page of this UI."""
    form = await request.form()
    values = {k: str(v) for k, v in form.items() if isinstance(v, str)}
    check_same_origin(request, who, values.get("form_token"))
    return values


#: A page's parameters for who is asking and the app's context (FastAPI dependencies).
CurrentViewer = Annotated[Viewer, Depends(viewer)]
Ui = Annotated[UiContext, Depends(ui)]


@dataclass(frozen=True)
class Notice:
    """What a page shows after an act: a message, or an error with its HTTP status."""

    message: str | None = None
    error: str | None = None
    status: int = 200
