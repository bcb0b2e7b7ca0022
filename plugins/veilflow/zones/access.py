"""Who may do what, as PostgreSQL sees it: logins, their veilflow group roles, and which
zones each login can read or write.

Identity is always the login that connected (``session_user``) and rights are always role
membership checked by the database (``pg_has_role``) of the role in force (``current_user``:
the login itself, or the group role it took with ``SET ROLE``, as the UI's login does);
nothing here takes a caller's name on trust. Granting and revoking go through
``governance_api.grant_role`` / ``revoke_role``, which check that the role in force
(``governance.acting_role()``) is a ``veilflow_admin`` and audit the change in the same
transaction.
"""

from __future__ import annotations

from dataclasses import dataclass

import psycopg

from veilflow.errors import AccessDenied, VeilflowError

#: Policy role name -> PostgreSQL group role.
ROLES = {
    "pipeline": "veilflow_pipeline",
    "steward": "veilflow_steward",
    "ml_engineer": "veilflow_ml_engineer",
    "auditor": "veilflow_auditor",
    "admin": "veilflow_admin",
    "viewer": "veilflow_viewer",
}
ZONES = ("restricted", "staging", "anonymized", "quarantine", "governance")


def group_role(role: str) -> str:
    """``steward`` or ``veilflow_steward`` -> ``veilflow_steward``; unknown names are errors."""
    name = role if role.startswith("veilflow_") else f"veilflow_{role}"
    if name not in ROLES.values():
        raise VeilflowError(f"unknown role {role!r}; known: {', '.join(ROLES)}")
    return name


def session_login(conn: psycopg.Connection) -> str:
    """The login this connection authenticated as."""
    row = conn.execute("SELECT session_user::text").fetchone()
    assert row is not None
    return str(row[0])


def roles_of(conn: psycopg.Connection) -> frozenset[str]:
    """Short names of the veilflow roles whose privileges the role in force holds
    (``current_user``: the login, or the role it took with ``SET ROLE``; every role for a
    superuser). A member ``WITH INHERIT FALSE`` holds a role only while it has SET it."""
    row = conn.execute(
        "SELECT coalesce(array_agg(r.rolname::text), '{}') FROM pg_roles r"
        " WHERE r.rolname = ANY(%s) AND pg_has_role(current_user, r.oid, 'USAGE')",
        (list(ROLES.values()),),
    ).fetchone()
    assert row is not None
    by_group = {v: k for k, v in ROLES.items()}
    return frozenset(by_group[g] for g in row[0])


@dataclass(frozen=True)
class ZoneAccess:
    """One login's rights on one zone."""

    login: str
    zone: str
    read: bool
    write: bool
    via: tuple[str, ...]
    superuser: bool


_ACCESS_SQL = """
SELECT r.rolname::text, z.zone, r.rolsuper,
       has_schema_privilege(r.oid, z.zone, 'USAGE')
         AND coalesce((SELECT bool_and(has_table_privilege(r.oid, c.oid, 'SELECT'))
                         FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                        WHERE n.nspname = z.zone AND c.relkind IN ('r', 'p', 'v', 'm')), true),
       has_schema_privilege(r.oid, z.zone, 'USAGE')
         AND has_schema_privilege(r.oid, z.zone, 'CREATE'),
       ARRAY(SELECT g.rolname::text FROM pg_roles g
              WHERE g.rolname = ANY(%(groups)s) AND pg_has_role(r.oid, g.oid, 'USAGE')
                AND NOT r.rolsuper ORDER BY 1)
  FROM pg_roles r CROSS JOIN unnest(%(zones)s::text[]) AS z(zone)
 WHERE r.rolcanlogin AND r.rolname !~ '^pg_'
   AND EXISTS (SELECT 1 FROM pg_namespace n WHERE n.nspname = z.zone)
 ORDER BY array_position(%(zones)s::text[], z.zone), r.rolname
"""


def zone_access(conn: psycopg.Connection) -> list[ZoneAccess]:
    """For every login and zone: may it read (USAGE and SELECT on every table in the zone),
    may it write (CREATE), and through which veilflow roles. Read from the catalog."""
    rows = conn.execute(_ACCESS_SQL, {"groups": list(ROLES.values()), "zones": list(ZONES)})
    return [
        ZoneAccess(
            login=login,
            zone=zone,
            read=bool(read),
            write=bool(write),
            via=tuple(via),
            superuser=bool(sup),
        )
        for login, zone, sup, read, write, via in rows.fetchall()
    ]


def members(conn: psycopg.Connection) -> dict[str, list[str]]:
    """Group role short name -> logins that hold it (directly or through other roles)."""
    out: dict[str, list[str]] = {name: [] for name in ROLES}
    rows = conn.execute(
        "SELECT g.rolname::text, r.rolname::text FROM pg_roles g CROSS JOIN pg_roles r"
        " WHERE g.rolname = ANY(%s) AND r.rolcanlogin AND NOT r.rolsuper"
        " AND pg_has_role(r.oid, g.oid, 'USAGE') ORDER BY 1, 2",
        (list(ROLES.values()),),
    ).fetchall()
    by_group = {v: k for k, v in ROLES.items()}
    for group, login in rows:
        out[by_group[group]].append(login)
    return out


def _membership_call(conn: psycopg.Connection, query: str, params: tuple[object, ...]) -> bool:
    try:
        with conn.transaction():
            row = conn.execute(query, params).fetchone()
    except psycopg.errors.InsufficientPrivilege as exc:
        raise AccessDenied(_first_line(exc)) from None
    except (psycopg.errors.UndefinedObject, psycopg.errors.InvalidParameterValue) as exc:
        raise VeilflowError(_first_line(exc)) from None
    assert row is not None
    return bool(row[0])


def _first_line(exc: psycopg.Error) -> str:
    diag = exc.diag.message_primary
    return diag or str(exc).strip().splitlines()[0]


def grant_role(
    conn: psycopg.Connection,
    login: str,
    role: str,
    *,
    create: bool = False,
    verifier: str | None = None,
) -> bool:
    """Make ``login`` a member of a veilflow role (``create``: create the login first when it
    does not exist, with the password whose SCRAM ``verifier`` is given, else without one).
    True when the login was created. Audited."""
    return _membership_call(
        conn,
        "SELECT governance_api.grant_role(%s, %s, %s, %s)",
        (login, group_role(role), create, verifier),
    )


def revoke_role(conn: psycopg.Connection, login: str, role: str) -> bool:
    """Remove ``login`` from a veilflow role; True when it was a member. Audited."""
    return _membership_call(
        conn, "SELECT governance_api.revoke_role(%s, %s)", (login, group_role(role))
    )
