"""The Airflow user behind a UI request, asked of Airflow's auth manager.

Plugin apps are mounted inside Airflow's API server but Airflow does not guard them, so
``veilflow.ui`` calls ``resolve_airflow_user`` on every request with the request's JWT. The
token is validated by the configured auth manager (signature, expiry, revocation); the user
may reach the app when the auth manager authorizes a GET on the ``veilflow`` custom view,
and is an admin when the auth manager says so in its own terms: SimpleAuthManager's ``ADMIN``
role, or FAB's ``Admin`` role. Any other auth manager's users are not admins here (fail
closed) until taught otherwise. Which pages a user may open is not Airflow's answer: the
user's Airflow role and admin flag go to ``veilflow.ui.roles``, which maps them (and
``VEILFLOW_UI_ROLES``) to veilflow roles.
"""

from __future__ import annotations

import logging
from typing import Any

from veilflow.ui.auth import Identity

log = logging.getLogger(__name__)

VIEW_NAME = "veilflow"


def is_airflow_admin(user: Any) -> bool:
    """Whether an auth manager's user is an Airflow admin."""
    role = getattr(user, "role", None)
    if isinstance(role, str):  # SimpleAuthManager: VIEWER < USER < OP < ADMIN
        return role.upper() == "ADMIN"
    roles = getattr(user, "roles", None)  # FAB: a list of Role objects with a name
    if roles:
        return any(getattr(r, "name", None) == "Admin" for r in roles)
    return False


def _role(user: Any) -> str | None:
    role = getattr(user, "role", None)
    if isinstance(role, str):
        return role
    roles = getattr(user, "roles", None)
    if roles:
        return ", ".join(str(getattr(r, "name", r)) for r in roles)
    return None


async def resolve_airflow_user(token: str) -> Identity | None:
    """The Airflow user a JWT names, or None when it is invalid, expired or revoked."""
    from airflow.api_fastapi.app import get_auth_manager
    from jwt import InvalidTokenError

    manager = get_auth_manager()
    try:
        user = await manager.get_user_from_token(token)
    except InvalidTokenError:
        return None
    try:
        may_view = bool(
            manager.is_authorized_custom_view(method="GET", resource_name=VIEW_NAME, user=user)
        )
    except Exception as exc:  # an auth manager that cannot answer denies
        log.warning("auth manager could not authorize the veilflow view: %s", type(exc).__name__)
        may_view = False
    return Identity(
        username=user.get_name(),
        is_admin=is_airflow_admin(user),
        may_view=may_view,
        role=_role(user),
    )
