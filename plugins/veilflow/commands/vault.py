"""`veilflow` commands for the vault area: access grants, data keys, re-identification and
the audit log. Every command acts as the PostgreSQL login of the configured connection
(``VEILFLOW_DATABASE_URL`` / the embedded server), whose role membership decides what it may
do; refusals are audited."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import psycopg
import typer

from veilflow.commands import command_group, policy_file
from veilflow.errors import VeilflowError
from veilflow.zones.logins import Duty

access_app = command_group("Who may read which zone: grant and revoke veilflow roles.")
keys_app = command_group("Data keys: versions and states (never their material).")
audit_app = command_group("The hash-chained audit log.")

KeyArg = Annotated[str, typer.Argument(help="Key as `<dataset>/<purpose>`, e.g. customers/token.")]
VersionArg = Annotated[
    str, typer.Argument(help="Key version as `<dataset>/<purpose>@v<N>`, e.g. customers/token@v1.")
]


def _connect(duty: Duty) -> psycopg.Connection:
    """A connection as the login of ``duty``: on the embedded server each command connects as
    the local login that holds just the role it needs; elsewhere, as the person's own login
    (``VEILFLOW_DATABASE_URL``)."""
    from veilflow.zones.db import connect

    return connect(autocommit=True, duty=duty)


def _versioned(ref: str) -> tuple[str, str, int]:
    from veilflow.transform.keys import parse_key_ref

    dataset, purpose, version = parse_key_ref(ref)
    if version is None:
        raise VeilflowError(f"{ref}: name the version, e.g. {ref}@v1")
    return dataset, purpose, version


def _unversioned(ref: str) -> tuple[str, str]:
    from veilflow.transform.keys import parse_key_ref

    dataset, purpose, version = parse_key_ref(ref)
    if version is not None:
        raise VeilflowError(f"{ref}: name the key without a version, e.g. {dataset}/{purpose}")
    return dataset, purpose


# ------------------------------------------------------------------------------- access
@access_app.command("grant")
def access_grant(
    login: Annotated[str, typer.Argument(help="PostgreSQL login.")],
    role: Annotated[str, typer.Argument(help="pipeline, steward, ml_engineer, auditor or admin.")],
    create: Annotated[
        bool,
        typer.Option(
            help="Create the login if it does not exist (without a password, unless "
            "--password-file is given)."
        ),
    ] = False,
    password_file: Annotated[
        Path | None,
        typer.Option(
            help="With --create: give the new login a random password and write it to this "
            "new file (0600) to hand to its owner. The server stores only its SCRAM verifier; "
            "an existing login's password is never changed here.",
        ),
    ] = None,
) -> None:
    """Make a login a member of a veilflow role (admins only; audited)."""
    from veilflow.vault.access import grant
    from veilflow.zones.access import group_role

    if password_file is not None and not create:
        raise VeilflowError("--password-file sets the password of a new login: add --create")
    with _connect("admin") as conn:
        if password_file is None:
            created = grant(conn, login, role, create=create)
        else:
            created = _grant_with_password(conn, login, role, password_file)
    typer.echo(
        f"{'created login ' + login + ' and ' if created else ''}granted "
        f"{group_role(role)} to {login}"
        + (f"; its password is in {password_file}" if password_file and created else "")
    )


def _grant_with_password(conn: psycopg.Connection, login: str, role: str, path: Path) -> bool:
    """Write a new password to ``path`` (created, 0600) first, then create the login with its
    verifier; the file is removed again when the grant does not go through, so no password
    is left that opens nothing, and none is lost for a login that was made."""
    import secrets

    from veilflow.vault.access import grant
    from veilflow.zones.logins import scram_verifier
    from veilflow.zones.secret_file import new_secret_file

    password = secrets.token_urlsafe(32)
    with new_secret_file(path, password, "the password"):
        created = grant(
            conn, login, role, create=True, verifier=scram_verifier(conn, login, password)
        )
    if not created:  # the function refuses an existing login; kept as a guard
        path.unlink(missing_ok=True)
    return created


@access_app.command("revoke")
def access_revoke(
    login: Annotated[str, typer.Argument(help="PostgreSQL login.")],
    role: Annotated[str, typer.Argument(help="The veilflow role to take away.")],
) -> None:
    """Remove a login from a veilflow role (admins only; audited)."""
    from veilflow.vault.access import revoke
    from veilflow.zones.access import group_role

    with _connect("admin") as conn:
        was = revoke(conn, login, role)
    typer.echo(
        f"revoked {group_role(role)} from {login}"
        if was
        else f"{login} was not a member of {group_role(role)}; nothing to revoke"
    )


@access_app.command("list")
def access_list(
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable.")] = False,
) -> None:
    """Who can read (and write) which zone, from the database catalog (admins and auditors)."""
    from veilflow.vault.access import list_access

    with _connect("admin") as conn:
        rows = list_access(conn)
    if as_json:
        typer.echo(json.dumps([r.__dict__ for r in rows], indent=2))
        return
    zone = None
    for r in rows:
        if not (r.read or r.write):
            continue
        if r.zone != zone:
            zone = r.zone
            typer.echo(f"{zone}:")
        rights = "read/write" if r.read and r.write else "read" if r.read else "write"
        via = "superuser" if r.superuser else ", ".join(r.via) or "direct grant"
        typer.echo(f"  {r.login:<24} {rights:<11} via {via}")


# ------------------------------------------------------------------------------- keys
def _manage(action: str, target: str) -> psycopg.Connection:
    from veilflow.vault.access import require

    conn = _connect("admin")
    try:
        require(conn, "keys.manage", action=action, target=target)
    except BaseException:
        conn.close()
        raise
    return conn


@keys_app.command("list")
def keys_list(
    dataset: Annotated[str | None, typer.Option(help="Only this dataset.")] = None,
) -> None:
    """Key versions, their states and master key (admins only)."""
    from veilflow.vault.access import require
    from veilflow.vault.keys import list_keys

    with _connect("admin") as conn:
        require(conn, "keys.list", action="keys.list", target=dataset or "*")
        versions = list_keys(conn, dataset)
    if not versions:
        typer.echo("no data keys yet (the pipeline creates them on first use)")
    for v in versions:
        typer.echo(
            f"{v.ref:<36} {v.state:<10} master {v.master_key_id:<24} "
            f"created {v.created_at:%Y-%m-%d %H:%M} by {v.created_by}"
        )


@keys_app.command("create")
def keys_create(key: KeyArg) -> None:
    """Create version 1 of a data key (admins only; audited)."""
    from veilflow.vault.keys import create_key
    from veilflow.vault.master import default_master_key

    dataset, purpose = _unversioned(key)
    with _manage("key.create", key) as conn:
        v = create_key(conn, default_master_key(), dataset, purpose)
    typer.echo(f"created {v.ref}")


@keys_app.command("rotate")
def keys_rotate(key: KeyArg) -> None:
    """Add a new active version; older versions stay usable for re-identification."""
    from veilflow.vault.keys import rotate_key
    from veilflow.vault.master import default_master_key

    dataset, purpose = _unversioned(key)
    with _manage("key.rotate", key) as conn:
        v = rotate_key(conn, default_master_key(), dataset, purpose)
    typer.echo(f"rotated {key}: {v.ref} is active")


@keys_app.command("rewrap")
def keys_rewrap(
    new_key_file: Annotated[
        Path,
        typer.Option(help="The new master key file (created 0600 with a fresh key when absent)."),
    ],
) -> None:
    """Re-encrypt every data key under a new master key; no data key changes. Afterwards
    point VEILFLOW_MASTER_KEY or $VEILFLOW_HOME/master.key at the new key."""
    from veilflow.vault.keys import rewrap_keys
    from veilflow.vault.master import default_master_key, master_key_from_file

    old = default_master_key(create=False)
    new = master_key_from_file(new_key_file, create=True)
    if new.key_id == old.key_id:
        raise VeilflowError("the new master key is the one already in use")
    with _manage("key.rewrap", "*") as conn:
        n = rewrap_keys(conn, old, new)
    typer.echo(
        f"rewrapped {n} data key version(s) from {old.key_id} to {new.key_id}; "
        f"now use {new_key_file} as the master key"
    )


@keys_app.command("disable")
def keys_disable(version: VersionArg) -> None:
    """Make a key version unusable (until enabled again)."""
    from veilflow.vault.keys import disable_key

    with _manage("key.disable", version) as conn:
        v = disable_key(conn, *_versioned(version))
    typer.echo(f"{v.ref} is {v.state}")


@keys_app.command("enable")
def keys_enable(version: VersionArg) -> None:
    """Make a disabled key version usable again for re-identification (as retired)."""
    from veilflow.vault.keys import enable_key

    with _manage("key.enable", version) as conn:
        v = enable_key(conn, *_versioned(version))
    typer.echo(f"{v.ref} is {v.state}")


@keys_app.command("destroy")
def keys_destroy(
    version: VersionArg,
    yes: Annotated[bool, typer.Option("--yes", help="Confirm: this cannot be undone.")] = False,
) -> None:
    """Crypto-shredding: erase a key version for good; nothing it made can be reversed."""
    from veilflow.vault.keys import destroy_key

    if not yes:
        raise VeilflowError(f"destroying {version} cannot be undone; repeat with --yes")
    with _manage("key.destroy", version) as conn:
        v = destroy_key(conn, *_versioned(version))
    typer.echo(f"{v.ref} is {v.state}: what it encrypted or tokenized can no longer be reversed")


# ------------------------------------------------------------------------------- audit
@audit_app.command("verify")
def audit_verify(
    anchor: Annotated[
        str | None,
        typer.Option(
            help="ROWS:HEAD printed by an earlier verify: also fail when the chain no longer"
            " holds it (its newest rows removed, or rewritten)."
        ),
    ] = None,
) -> None:
    """Walk the hash chain and report the first broken link (exit 10 when broken)."""
    from veilflow.vault.access import require
    from veilflow.vault.audit import Anchor, AuditChainBroken, anchor_broken, verify

    earlier = Anchor.parse(anchor) if anchor is not None else None
    with _connect("auditor") as conn:
        require(conn, "audit.read", action="audit.verify", target="governance.audit_log")
        report = verify(conn)
        why = anchor_broken(conn, earlier) if report.ok and earlier is not None else None
    if not report.ok:
        raise AuditChainBroken(report.failure())
    if why is not None:
        raise AuditChainBroken(f"audit chain does not hold the anchor: {why}")
    typer.echo(
        f"audit chain intact: {report.rows} row(s), head {report.head}"
        + (f", holds the anchor of {earlier.rows} row(s)" if earlier is not None else "")
    )
    typer.echo(f"anchor for a later check (keep it outside this database): {Anchor.of(report)}")


@audit_app.command("tail")
def audit_tail(
    n: Annotated[int, typer.Option("-n", min=1, help="Entries to show.")] = 20,
    action: Annotated[
        str | None, typer.Option(help="Only this action or action prefix (e.g. key, reidentify).")
    ] = None,
    actor: Annotated[str | None, typer.Option(help="Only this login.")] = None,
) -> None:
    """The most recent audit entries, oldest first (auditors only)."""
    from veilflow.vault.access import require
    from veilflow.vault.audit import tail

    with _connect("auditor") as conn:
        require(conn, "audit.read", action="audit.tail", target="governance.audit_log")
        for entry in tail(conn, n, action=action, actor=actor):
            typer.echo(entry.line())


@audit_app.command("denials")
def audit_denials() -> None:
    """Import plain-SQL privilege refusals from the server log into the audit log."""
    # As `sql.denied` rows, never with a statement's text. Needs a superuser, or the rights
    # in veilflow.vault.denials.LOG_READER_RIGHTS; safe to repeat: nothing is added twice.
    from veilflow.vault.denials import import_denials

    with _connect("audit") as conn:
        result = import_denials(conn)
    typer.echo(str(result))


# ------------------------------------------------------------------------------- reidentify


def reidentify_cmd(
    policy: Annotated[str, typer.Option(help="Policy file or dataset name.")],
    column: Annotated[str, typer.Option(help="The tokenized or FF1-encrypted column.")],
    purpose: Annotated[
        str, typer.Option(help="Why (recorded in the audit log), e.g. a ticket and a reason.")
    ],
    query: Annotated[
        str | None,
        typer.Option(help="SQL whose first column gives the tokens (else stdin, one per line)."),
    ] = None,
    run: Annotated[
        str | None,
        typer.Option(help="The run whose key versions apply (default: latest published)."),
    ] = None,
    with_tokens: Annotated[
        bool, typer.Option("--with-tokens", help="Print `token<TAB>original`.")
    ] = False,
) -> None:
    """Write the originals of tokens / FF1 ciphertexts (stewards only, with a purpose;
    audited). One output line per input line; an empty line where nothing matched."""
    from veilflow.policy import load_policy
    from veilflow.vault.master import default_master_key
    from veilflow.vault.reidentify import reidentify

    pol = load_policy(policy_file(policy))
    with _connect("steward") as conn:
        if query is not None:
            tokens: list[str | None] = [
                None if r[0] is None else str(r[0]) for r in conn.execute(query).fetchall()
            ]
        else:
            tokens = [line.rstrip("\r\n") or None for line in sys.stdin]
        result = reidentify(
            conn, default_master_key(create=False), pol, column, tokens, purpose, run_id=run
        )
    out = sys.stdout
    for tok, orig in zip(tokens, result.values, strict=True):
        out.write(f"{tok or ''}\t{orig or ''}\n" if with_tokens else f"{orig or ''}\n")
    out.flush()
    typer.echo(
        f"re-identified {result.matched} of {len(tokens)} value(s) of "
        f"{pol.dataset}.{column} with {', '.join(result.versions) or 'no key'}",
        err=True,
    )


def register(app: typer.Typer) -> None:
    """Add this area's commands to the root app."""
    app.add_typer(access_app, name="access")
    app.add_typer(keys_app, name="keys")
    app.add_typer(audit_app, name="audit")
    app.command("reidentify")(reidentify_cmd)
