"""What each role may do with keys, tokens and the audit log, checked against the role
membership of the role in force (the connected login, or the group role it took with
``SET ROLE``); a refusal is audited, under the login's name, before it is raised.

    pipeline     encrypt / tokenize (draw active data keys; create a dataset's first key)
    steward      re-identify: decrypt / detokenize, with a stated purpose
    admin        manage keys (create, rotate, rewrap, disable, destroy, list), grants and
                 the scrub API's tokens
    auditor      read the audit log; list who can read which zone; list API tokens
    ml_engineer  nothing here (reads the anonymized zone through table grants)

Anything not listed is denied. A superuser passes every check (it passes PostgreSQL's too),
unless it took a lesser role with ``SET ROLE``.
The database enforces the same lines with grants and the ``governance_api`` functions; these
checks give a clear error and leave the trace.
"""

from __future__ import annotations

import logging

import psycopg

from veilflow.errors import AccessDenied
from veilflow.vault.audit import record
from veilflow.zones import access as zone_access
from veilflow.zones.access import roles_of, session_login

log = logging.getLogger(__name__)

#: Capability -> roles that hold it. Fail closed: a capability missing here has no holder.
CAPABILITIES: dict[str, frozenset[str]] = {
    "encrypt": frozenset({"pipeline"}),
    "reidentify": frozenset({"steward"}),
    "keys.manage": frozenset({"admin"}),
    "keys.list": frozenset({"admin"}),
    "access.manage": frozenset({"admin"}),
    "access.list": frozenset({"admin", "auditor"}),
    "audit.read": frozenset({"auditor"}),
    "api_tokens.manage": frozenset({"admin"}),
    "api_tokens.list": frozenset({"admin", "auditor"}),
}

MIN_PURPOSE = 8


def allowed(conn: psycopg.Connection, capability: str) -> bool:
    """Whether the role in force holds ``capability`` (no audit row)."""
    holders = CAPABILITIES.get(capability, frozenset())
    if _is_superuser(conn):
        return True
    return bool(holders & roles_of(conn))


def _is_superuser(conn: psycopg.Connection) -> bool:
    row = conn.execute("SELECT rolsuper FROM pg_roles WHERE rolname = current_user").fetchone()
    return bool(row and row[0])


def deny(
    conn: psycopg.Connection,
    action: str,
    *,
    target: str,
    reason: str,
    purpose: str | None = None,
    count: int | None = None,
) -> AccessDenied:
    """Audit a refused attempt (committed on its own) and return the error to raise."""
    login = session_login(conn)
    try:
        record(
            conn,
            action,
            target=target,
            purpose=purpose,
            count=count,
            outcome="denied",
            details={"reason": reason},
        )
    except psycopg.Error as exc:  # the refusal stands even if the trace cannot be written
        log.error("could not audit a denied %s by %s: %s", action, login, type(exc).__name__)
    return AccessDenied(f"{login} may not {action} {target}: {reason}")


def require(
    conn: psycopg.Connection,
    capability: str,
    *,
    action: str,
    target: str,
    purpose: str | None = None,
    count: int | None = None,
) -> str:
    """Pass when the role in force holds ``capability``; otherwise audit the attempt as
    denied and raise ``AccessDenied``. Returns the login."""
    if not allowed(conn, capability):
        holders = CAPABILITIES.get(capability, frozenset())
        need = " or ".join(sorted(zone_access.ROLES[h] for h in holders)) or "no role"
        raise deny(
            conn, action, target=target, purpose=purpose, count=count, reason=f"requires {need}"
        )
    if capability == "reidentify" and (purpose is None or len(purpose.strip()) < MIN_PURPOSE):
        raise deny(
            conn,
            action,
            target=target,
            purpose=purpose,
            count=count,
            reason=f"a stated purpose (at least {MIN_PURPOSE} characters) is required",
        )
    return session_login(conn)


def grant(
    conn: psycopg.Connection,
    login: str,
    role: str,
    *,
    create: bool = False,
    verifier: str | None = None,
) -> bool:
    """``zones.access.grant_role`` behind the admin check; refusals audited."""
    group = zone_access.group_role(role)
    require(conn, "access.manage", action="access.grant", target=f"{login} {group}")
    return zone_access.grant_role(conn, login, role, create=create, verifier=verifier)


def revoke(conn: psycopg.Connection, login: str, role: str) -> bool:
    """``zones.access.revoke_role`` behind the admin check; refusals audited."""
    group = zone_access.group_role(role)
    require(conn, "access.manage", action="access.revoke", target=f"{login} {group}")
    return zone_access.revoke_role(conn, login, role)


def list_access(conn: psycopg.Connection) -> list[zone_access.ZoneAccess]:
    """Who can read / write which zone (admins and auditors; refusals audited)."""
    require(conn, "access.list", action="access.list", target="zones")
    return zone_access.zone_access(conn)
