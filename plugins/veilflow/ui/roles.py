"""Who may open which page of the governance UI, and as which PostgreSQL group role the
page's database work runs: the one place that turns an Airflow user into veilflow roles.

**From Airflow to veilflow.** An Airflow user gets veilflow roles from, in this order:

1. ``VEILFLOW_UI_ROLES``, a per-user override that *replaces* what the Airflow role gives:
   ``alice:auditor,bob:steward,carol:admin+auditor`` — comma-separated ``user:roles``
   entries, several roles joined with ``+``, user names as Airflow knows them (case
   sensitive), role names from ``VEILFLOW_ROLES``. Spaces around names are ignored. A
   malformed value (no colon, an empty or unknown role, a user named twice) is refused
   with ``UiConfigError`` and the UI answers every page with 500 until it is fixed.
2. The Airflow role: an Airflow admin (the auth manager's own admin) is a veilflow
   ``admin``; Airflow ``viewer``, ``user`` and ``op`` (SimpleAuthManager's roles, FAB's
   ``Viewer``, ``User``, ``Op``) are a veilflow ``viewer``. Any other Airflow role gives no
   veilflow role: every page answers 403.

**From veilflow role to page.** ``RULES`` says, per page and per action, which veilflow roles
may use it and as which group role its database work runs (``SET LOCAL ROLE``, in a
``READ ONLY`` transaction for pages, read-write for grant, revoke and rotate). The audit
page and the chain verification are for auditors only, admins included: whoever manages
keys and grants does not also read the trail of their own acts unless configured as an
auditor too (separation of duties).

Nothing here imports Airflow.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from types import MappingProxyType

import psycopg
from psycopg import sql

from veilflow.errors import VeilflowError
from veilflow.zones.access import ROLES

ENV_VAR = "VEILFLOW_UI_ROLES"
#: The roles a person may hold in the UI: every veilflow role but the pipeline's.
VEILFLOW_ROLES = tuple(r for r in ROLES if r != "pipeline")
#: Airflow role names (compared case-insensitively) that make a veilflow ``viewer``. An
#: Airflow admin is recognised by the auth manager itself (``Identity.is_admin``).
AIRFLOW_VIEWER_ROLES = frozenset({"viewer", "user", "op"})

Connect = Callable[[], psycopg.Connection]


class UiConfigError(VeilflowError):
    """The UI cannot decide who may do what: a malformed ``VEILFLOW_UI_ROLES``, or a
    database login that may not act as a page's group role. Every request is refused."""


@dataclass(frozen=True)
class RoleMap:
    """Per-user overrides from ``VEILFLOW_UI_ROLES``; everyone else by Airflow role."""

    overrides: Mapping[str, frozenset[str]] = field(default_factory=dict)

    @classmethod
    def parse(cls, text: str) -> RoleMap:
        """``user:role[+role],…`` as documented above; a blank value means no overrides."""
        found: dict[str, frozenset[str]] = {}
        if not text.strip():
            return cls()
        for n, entry in enumerate(text.split(","), start=1):
            user, sep, roles = (part.strip() for part in entry.partition(":"))
            where = f"{ENV_VAR} entry {n} ({entry.strip()!r})"
            if not sep or not user or ":" in roles:
                raise UiConfigError(f"{where}: write user:role, e.g. alice:auditor")
            names = [r.strip() for r in roles.split("+")]
            if not all(names):
                raise UiConfigError(f"{where}: an empty role name; write user:role[+role]")
            unknown = [r for r in names if r not in VEILFLOW_ROLES]
            if unknown:
                raise UiConfigError(
                    f"{where}: unknown veilflow role {unknown[0]!r}; one of "
                    f"{', '.join(VEILFLOW_ROLES)}, several joined with '+'"
                )
            if user in found:
                raise UiConfigError(f"{where}: {user} is named twice")
            found[user] = frozenset(names)
        return cls(MappingProxyType(found))

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> RoleMap:
        return cls.parse((os.environ if environ is None else environ).get(ENV_VAR, ""))

    def roles_for(
        self, username: str, airflow_role: str | None, *, is_admin: bool
    ) -> frozenset[str]:
        """The veilflow roles of an Airflow user. ``airflow_role``: the auth manager's role
        name(s), comma-separated when it has several (FAB)."""
        if username in self.overrides:
            return self.overrides[username]
        if is_admin:
            return frozenset({"admin"})
        names = {r.strip().lower() for r in (airflow_role or "").split(",")}
        return frozenset({"viewer"}) if names & AIRFLOW_VIEWER_ROLES else frozenset()


@dataclass(frozen=True)
class Need:
    """What a page or action needs: a veilflow role among ``roles``; its database work runs
    as the group role ``acts_as`` names for the first of those roles the person holds."""

    what: str  # the subject of the refusal: "The Keys page needs …"
    acts_as: tuple[tuple[str, str], ...]
    read_only: bool = True

    @property
    def roles(self) -> frozenset[str]:
        return frozenset(role for role, _ in self.acts_as)

    def group_for(self, held: Iterable[str]) -> str | None:
        have = set(held)
        return next((group for role, group in self.acts_as if role in have), None)


#: Every page reads lineage and runs as ``veilflow_viewer``, whoever asks: the least that
#: shows them. The other pages run as the person's own group role.
_READERS = tuple((r, "veilflow_viewer") for r in ("viewer", "steward", "auditor", "admin"))
_ADMIN = (("admin", "veilflow_admin"),)
_AUDITOR = (("auditor", "veilflow_auditor"),)

RULES: Mapping[str, Need] = MappingProxyType(
    {
        "lineage": Need("The Lineage page", _READERS),
        "runs": Need("The Runs page", _READERS),
        "access": Need(
            "The Access page", (("admin", "veilflow_admin"), ("auditor", "veilflow_auditor"))
        ),
        "access.change": Need("Granting or revoking roles", _ADMIN, read_only=False),
        "keys": Need("The Keys page", _ADMIN),
        "keys.rotate": Need("Rotating keys", _ADMIN, read_only=False),
        "audit": Need("The Audit page", _AUDITOR),
        "audit.verify": Need("Verifying the audit chain", _AUDITOR),
    }
)


@contextmanager
def acting_as(
    connect: Connect, group: str, *, read_only: bool = True
) -> Iterator[psycopg.Connection]:
    """A new connection holding one transaction in which ``group`` is the role in force
    (``SET LOCAL ROLE``), read-only unless asked otherwise; committed when the block ends,
    rolled back on an error. Whatever the block runs has ``group``'s rights and no more,
    provided the login holds nothing itself (the UI's login is a member ``WITH INHERIT
    FALSE, SET TRUE``). This bounds mistakes in queries, not code that issues its own
    ``SET ROLE``."""
    with connect() as conn, conn.transaction():
        if read_only:
            conn.execute("SET TRANSACTION READ ONLY")
        try:
            conn.execute(sql.SQL("SET LOCAL ROLE {}").format(sql.Identifier(group)))
        except psycopg.Error as exc:
            login = conn.info.user
            reason = exc.diag.message_primary or type(exc).__name__
            raise UiConfigError(
                f"the UI's database login {login} cannot act as {group} ({reason}); make it "
                f"a member of {group} WITH SET TRUE"
            ) from None
        yield conn
