"""Who is asking: the Airflow user behind a request, their veilflow roles, and the guards on
pages and changing requests.

The UI does not know how Airflow checks a token; the Airflow plugin hands the app a
``TokenResolver`` (``veilflow.airflow.ui_auth``) that asks Airflow's auth manager. This module
finds the token (``Authorization: Bearer`` first, then Airflow's ``_token`` cookie), turns
"no token" / "invalid token" / "no view permission" into 401 / 401 / 403, gives the caller
their veilflow roles (``veilflow.ui.roles``), and guards:

* every page and action by ``require``: 403 naming the veilflow role needed, unless the
  caller holds one of the roles ``roles.RULES`` lists for it;
* a POST authenticated by the ambient cookie must come from the same origin (``Origin`` or
  ``Referer`` host equals the request's host) and carry the form token derived from the
  caller's JWT, so another site cannot make the browser act for the user. A bearer header is
  never sent by the browser on its own, so those requests skip both checks.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Literal
from urllib.parse import urlparse

from starlette.requests import Request

from veilflow.ui.roles import RULES, RoleMap

COOKIE_NAME = "_token"  # Airflow's JWT cookie (airflow.api_fastapi.auth.managers.base_auth_manager)


@dataclass(frozen=True)
class Identity:
    """An Airflow user as the auth manager sees them."""

    username: str
    is_admin: bool
    may_view: bool = True
    role: str | None = None  # the auth manager's role name(s), comma-separated when several


#: Token → the user it names, or None when the token is invalid, expired or revoked.
TokenResolver = Callable[[str], Awaitable[Identity | None]]


@dataclass(frozen=True)
class Viewer:
    """The authenticated caller of one request."""

    username: str
    role: str | None  # as Airflow names it
    roles: frozenset[str]  # veilflow roles (``veilflow.ui.roles``)
    via: Literal["cookie", "bearer"]
    token: str = field(repr=False)

    @property
    def form_token(self) -> str:
        return form_token(self.token)

    def can(self, action: str) -> bool:
        """Whether this caller may use a page or action of ``roles.RULES`` (unknown: no)."""
        need = RULES.get(action)
        return need is not None and bool(need.roles & self.roles)


class AuthError(Exception):
    """A request the UI refuses: ``status`` 401 (who are you?) or 403 (not allowed)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def form_token(jwt: str) -> str:
    """The anti-forgery token of a session: a digest of its JWT, which another site cannot
    read (the cookie is HttpOnly) and so cannot compute."""
    return hashlib.sha256(b"veilflow-ui-form\x00" + jwt.encode()).hexdigest()[:40]


def request_token(request: Request) -> tuple[str, Literal["cookie", "bearer"]] | None:
    """The JWT of a request and where it came from; an explicit bearer header wins, as in
    Airflow's own API."""
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip(), "bearer"
    cookie = request.cookies.get(COOKIE_NAME)
    if cookie:
        return cookie, "cookie"
    return None


async def authenticate(request: Request, resolve: TokenResolver, role_map: RoleMap) -> Viewer:
    """The caller with their veilflow roles, or ``AuthError`` (401 without a valid token,
    403 without view rights)."""
    found = request_token(request)
    if found is None:
        raise AuthError(401, "Log in to Airflow to see veilflow governance.")
    token, via = found
    identity = await resolve(token)
    if identity is None:
        raise AuthError(
            401, "Your Airflow session is not valid (expired or revoked); log in again."
        )
    if not identity.may_view:
        raise AuthError(403, f"Airflow user {identity.username} may not view veilflow governance.")
    return Viewer(
        username=identity.username,
        role=identity.role,
        roles=role_map.roles_for(identity.username, identity.role, is_admin=identity.is_admin),
        via=via,
        token=token,
    )


def _origin_host(value: str | None) -> str | None:
    if not value or value == "null":
        return None
    parts = urlparse(value)
    return parts.netloc.lower() or None


def check_same_origin(request: Request, viewer: Viewer, submitted_token: str | None) -> None:
    """Refuse a cookie-authenticated POST from another origin or without the form token."""
    if viewer.via == "bearer":
        return
    hosts = {
        h.strip().lower()
        for h in (request.headers.get("host"), request.headers.get("x-forwarded-host"))
        if h
    }
    source = _origin_host(request.headers.get("origin")) or _origin_host(
        request.headers.get("referer")
    )
    if source is None or source not in hosts:
        raise AuthError(403, "Refused: the request did not come from this site's pages.")
    if not submitted_token or not hmac.compare_digest(submitted_token, viewer.form_token):
        raise AuthError(
            403, "Refused: the form is stale or was not sent by this page; reload and try again."
        )


def require(viewer: Viewer, action: str) -> str:
    """Pass when the caller may use ``action`` (a key of ``roles.RULES``) and return the
    group role its database work runs as; otherwise 403 naming the veilflow role needed."""
    need = RULES[action]
    group = need.group_for(viewer.roles)
    if group is None:
        names = sorted(need.roles)
        wanted = names[0] if len(names) == 1 else f"{', '.join(names[:-1])} or {names[-1]}"
        has = ", ".join(sorted(viewer.roles)) or "no veilflow role"
        raise AuthError(
            403,
            f"{need.what} needs the veilflow role {wanted}; "
            f"Airflow user {viewer.username} has {has}.",
        )
    return group
