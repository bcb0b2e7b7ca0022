"""The governance UI through FastAPI's TestClient: a stubbed Airflow auth (tokens ``alice``
admin, ``victor`` viewer, ``nemo`` without view rights) and a real database with lineage
events stored by the lineage emitter, run manifests, keys and the audit log.

Ground truth comes from the database (role membership, key versions, audit rows) and from the
hand-made manifest, never from the page under test."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

import psycopg
import pytest
from fastapi.testclient import TestClient

from tests.unit import lineage_support as ls
from veilflow.lineage.emitter import emit_stage
from veilflow.ui.app import create_app
from veilflow.ui.auth import Identity, form_token

ORIGIN = "http://testserver"
RUN_A = "patients:manual__2026-11-20T06:00:00+00:00"
RUN_B = "patients:scheduled__2026-11-27T06:00:00+00:00"
USERS = {
    "alice": Identity("alice", is_admin=True, role="ADMIN"),
    "victor": Identity("victor", is_admin=False, role="VIEWER"),
    "nemo": Identity("nemo", is_admin=False, may_view=False, role=None),
}


async def resolve(token: str) -> Identity | None:
    return USERS.get(token)


def run_link(dataset: str, run_id: str) -> str | None:
    return f"/dags/veilflow_{dataset}/runs/{run_id.split(':', 1)[1]}"


def store_run(
    conn: psycopg.Connection, run_id: str, manifest: dict[str, Any], *, status: str, at: datetime
) -> None:
    """A run as the stages leave it: its row in governance.runs and its lineage events."""
    manifest = {**manifest, "run_id": run_id}
    conn.execute(
        "INSERT INTO governance.runs (run_id, dataset, policy_hash, status, started_at,"
        " finished_at, rows_in, rows_out, manifest) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)",
        (
            run_id,
            "patients",
            manifest["policy"]["hash"],
            status,
            at,
            at + timedelta(minutes=2),
            manifest["rows_in"],
            manifest.get("rows_out"),
            json.dumps(manifest),
        ),
    )
    pol = ls.policy()
    stages = [("extract", "COMPLETE"), ("transform", "COMPLETE")]
    stages += (
        [("validate", "COMPLETE"), ("publish", "COMPLETE")]
        if status == "published"
        else [("validate", "FAIL"), ("quarantine", "COMPLETE")]
    )
    for stage, etype in stages:
        emit_stage(
            conn, stage=stage, event_type=etype, policy=pol, run_id=run_id, manifest=manifest
        )
    # the store keeps the emission time; pin it so date filters have a known answer
    conn.execute(
        "UPDATE governance.lineage_events SET event_time = %s WHERE run_id = %s", (at, run_id)
    )


@pytest.fixture
def ui_db(zones_db: str, tmp_path: Path) -> Iterator[str]:
    docs = tmp_path / "datadocs"
    (docs / "validations").mkdir(parents=True)
    (docs / "index.html").write_text("<html><body>GX data docs index</body></html>")
    (tmp_path / "secret.txt").write_text("outside the docs")
    published = ls.manifest(passed=True)
    published["gate"]["data_docs"] = str(docs / "index.html")
    with psycopg.connect(zones_db, autocommit=True) as conn:
        store_run(
            conn,
            RUN_A,
            ls.manifest(passed=False),
            status="quarantined",
            at=datetime(2026, 11, 20, 6, tzinfo=UTC),
        )
        store_run(
            conn, RUN_B, published, status="published", at=datetime(2026, 11, 27, 6, tzinfo=UTC)
        )
    yield zones_db


def client(token: str | None = None, *, bearer: bool = False) -> TestClient:
    c = TestClient(create_app(resolve, run_link=run_link), base_url=ORIGIN)
    if token and bearer:
        c.headers["Authorization"] = f"Bearer {token}"
    elif token:
        c.cookies.set("_token", token)
    return c


def post(
    c: TestClient,
    path: str,
    data: dict[str, str],
    *,
    token: str | None,
    origin: str | None = ORIGIN,
) -> Any:
    form = dict(data)
    if token is not None:
        form["form_token"] = form_token(token)
    headers = {"Origin": origin} if origin else {}
    return c.post(path, data=form, headers=headers)


def svg_texts(html: str) -> list[str]:
    svg = re.search(r"<svg.*?</svg>", html, re.S)
    assert svg, "no <svg> on the page"
    return re.findall(r"<text[^>]*>([^<]*)</text>", svg.group(0))


# ------------------------------------------------------------------------------- auth
PAGES = [
    "/lineage",
    "/lineage/patients",
    "/runs",
    f"/runs/view?run_id={quote(RUN_B)}",
    "/access",
    "/keys",
    "/audit",
]


@pytest.mark.parametrize("path", PAGES)
def test_every_page_refuses_without_a_valid_login(ui_db: str, path: str) -> None:
    assert client().get(path).status_code == 401
    assert client("forged").get(path).status_code == 401
    assert client("nemo").get(path).status_code == 403
    ok = client("victor").get(path)
    assert ok.status_code == 200, ok.text[-500:]
    assert "victor" in ok.text


def test_bearer_header_wins_over_the_cookie(ui_db: str) -> None:
    c = client("victor", bearer=True)
    c.cookies.set("_token", "alice")
    page = c.get("/access").text
    assert "Airflow user <b>victor</b>" in page and "grant-form" not in page


# ------------------------------------------------------------------------------- lineage
def test_lineage_explorer_draws_every_output_column(ui_db: str) -> None:
    html = client("victor").get("/lineage/patients").text
    manifest = ls.manifest()
    outputs = [c["name"] for c in manifest["columns"] if c["action"] != "drop"]
    texts = svg_texts(html)
    for name in outputs:
        assert name in texts, f"{name} missing from the graph"
    assert "fax" not in texts  # dropped: no output, no node
    keyed = {c["key"] for c in manifest["columns"] if c.get("key")}
    assert keyed and all(any(k in t for t in texts) for k in keyed)
    assert "restricted.patients" in texts and "anonymized.patients" in texts
    # newest run chosen by default, with its Airflow link (opened in the top window)
    assert f'Column lineage of run <span class="mono">{RUN_B}</span>' in html
    assert (
        'href="/dags/veilflow_patients/runs/scheduled__2026-11-27T06:00:00+00:00" '
        'target="_top"' in html
    )


def test_lineage_filters_by_date_policy_and_run(ui_db: str) -> None:
    c = client("victor")
    only_old = c.get("/lineage/patients", params={"until": "2026-11-21"}).text
    assert RUN_A in only_old and RUN_B not in only_old
    only_new = c.get("/lineage/patients", params={"since": "2026-11-26"}).text
    assert RUN_B in only_new and RUN_A not in only_new
    policy_hash = ls.policy().hash
    assert "Runs (2)" in c.get("/lineage/patients", params={"policy": policy_hash[:10]}).text
    assert "Runs (0)" in c.get("/lineage/patients", params={"policy": "f" * 10}).text
    picked = c.get("/lineage/patients", params={"run": RUN_A}).text
    assert f'Column lineage of run <span class="mono">{RUN_A}</span>' in picked
    one = svg_texts(c.get("/lineage/patients", params={"column": "email"}).text)
    assert "email" in one and "phone" not in one
    assert c.get("/lineage/patients", params={"since": "yesterday"}).status_code == 400


def test_lineage_index_lists_datasets_and_jumps_to_one(ui_db: str) -> None:
    c = client("victor")
    index = c.get("/lineage").text
    assert ">patients</a>" in index and "anonymized.patients" in index
    jump = c.get("/lineage", params={"dataset": "patients"}, follow_redirects=False)
    assert jump.status_code == 303 and jump.headers["location"].endswith("/lineage/patients")
    assert "No lineage stored" in c.get("/lineage", params={"since": "2030-01-01"}).text


# ------------------------------------------------------------------------------- runs
def test_run_page_shows_the_manifest(ui_db: str) -> None:
    c = client("victor")
    html = c.get("/runs/view", params={"run_id": RUN_B}).text
    m = ls.manifest(passed=True)
    assert re.search(r'class="rows-in">\s*1000<', html)
    assert re.search(r'class="rows-out">\s*996<', html)
    for col in m["columns"]:
        assert f'<td class="mono">{col["name"]}</td><td><b>{col["action"]}</b>' in html
    for check in m["gate"]["checks"]:
        assert f"<td>{check['name']}</td>" in html
    assert "FAIL" not in html
    docs = re.search(r'href="([^"]+)"[^>]*>GX Data Docs', html)
    assert docs, "no Data Docs link"
    got = c.get(docs.group(1))
    assert got.status_code == 200 and "GX data docs index" in got.text
    escape = docs.group(1).rsplit("/", 1)[0] + "/..%2Fsecret.txt"
    assert c.get(escape).status_code == 404
    assert "outside the docs" not in c.get(escape).text


def test_quarantined_run_shows_failed_checks_and_reasons(ui_db: str) -> None:
    html = client("victor").get("/runs/view", params={"run_id": RUN_A}).text
    assert '<span class="pill quarantined">quarantined</span>' in html
    assert re.search(
        r"<td>no_raw_value_survives</td><td class=\"mono\">email</td>\s*"
        r"<td class=\"bad\">FAIL</td>",
        html,
    )
    assert "quarantine.patients__x" in html
    listing = client("victor").get("/runs", params={"status": "quarantined"}).text
    assert RUN_A in listing and RUN_B not in listing
    assert client("victor").get("/runs/view", params={"run_id": "nope"}).status_code == 404


# ------------------------------------------------------------------------------- access
def member(conn: psycopg.Connection, login: str, group: str) -> bool:
    row = conn.execute("SELECT pg_has_role(%s, %s, 'USAGE')", (login, group)).fetchone()
    return bool(row and row[0])


def ui_audit(conn: psycopg.Connection, action: str) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (r[0], r[1], r[2])
        for r in conn.execute(
            "SELECT target, outcome, details FROM governance.audit_log WHERE action = %s"
            " ORDER BY seq",
            (action,),
        ).fetchall()
    ]


def test_admin_grants_and_revokes_a_role_audited_with_the_airflow_user(ui_db: str) -> None:
    from tests.conftest import make_login

    with psycopg.connect(ui_db, autocommit=True) as conn:
        make_login(conn, "vf_ui_analyst")
        try:
            c = client("alice")
            assert "grant-form" in c.get("/access").text
            r = post(
                c, "/access/grant", {"login": "vf_ui_analyst", "role": "ml_engineer"}, token="alice"
            )
            assert r.status_code == 200, r.text[-800:]
            assert "Granted veilflow_ml_engineer to vf_ui_analyst" in r.text
            assert member(conn, "vf_ui_analyst", "veilflow_ml_engineer")
            # the page now shows the login reading the anonymized zone, not the restricted one
            row = re.search(r'<tr data-login="vf_ui_analyst">(.*?)</tr>', r.text, re.S)
            assert row and re.findall(r"<td>([^<]*)</td>", row.group(1))[:2] == ["—", "read"]
            assert ui_audit(conn, "ui.access.grant") == [
                (
                    "vf_ui_analyst ml_engineer",
                    "ok",
                    {
                        "airflow_user": "alice",
                        "via": "ui",
                        "role": "veilflow_ml_engineer",
                        "login_created": False,
                    },
                )
            ]
            assert ui_audit(conn, "access.grant")[-1][:2] == ("vf_ui_analyst", "ok")
            r = post(
                c,
                "/access/revoke",
                {"login": "vf_ui_analyst", "role": "ml_engineer"},
                token="alice",
            )
            assert "Revoked veilflow_ml_engineer from vf_ui_analyst" in r.text
            assert not member(conn, "vf_ui_analyst", "veilflow_ml_engineer")
            revoked = ui_audit(conn, "ui.access.revoke")[-1][2]
            assert revoked["airflow_user"] == "alice" and revoked["was_member"] is True
            audit_page = c.get("/audit", params={"airflow_user": "alice"}).text
            assert "ui.access.grant" in audit_page and "ui.access.revoke" in audit_page
        finally:
            conn.execute('DROP ROLE IF EXISTS "vf_ui_analyst"')


def test_non_admins_and_forged_posts_change_nothing(ui_db: str) -> None:
    from tests.conftest import make_login

    with psycopg.connect(ui_db, autocommit=True) as conn:
        make_login(conn, "vf_ui_target")
        try:
            grant = {"login": "vf_ui_target", "role": "steward"}
            viewer = client("victor")
            assert "grant-form" not in viewer.get("/access").text
            assert post(viewer, "/access/grant", grant, token="victor").status_code == 403
            denied = ui_audit(conn, "ui.access.grant")
            assert denied and denied[-1][1] == "denied"
            assert denied[-1][2]["airflow_user"] == "victor"
            admin = client("alice")
            assert (
                post(
                    admin, "/access/grant", grant, token="alice", origin="http://evil.example"
                ).status_code
                == 403
            )
            assert post(admin, "/access/grant", grant, token=None).status_code == 403
            assert post(admin, "/access/grant", grant, token="victor").status_code == 403
            assert post(client(), "/access/grant", grant, token=None).status_code == 401
            assert not member(conn, "vf_ui_target", "veilflow_steward")
            # a bearer header is not ambient: no same-origin form needed
            api = client("alice", bearer=True)
            r = post(api, "/access/grant", grant, token=None, origin=None)
            assert r.status_code == 200 and member(conn, "vf_ui_target", "veilflow_steward")
        finally:
            conn.execute('DROP ROLE IF EXISTS "vf_ui_target"')


def test_unknown_role_or_login_is_an_error_not_a_change(ui_db: str) -> None:
    c = client("alice")
    assert (
        post(c, "/access/grant", {"login": "x", "role": "root"}, token="alice").status_code == 400
    )
    r = post(c, "/access/grant", {"login": "vf_nobody_here", "role": "steward"}, token="alice")
    assert r.status_code == 400 and "no login vf_nobody_here" in r.text
    with psycopg.connect(ui_db) as conn:
        assert ui_audit(conn, "ui.access.grant")[-1][1] == "error"


# ------------------------------------------------------------------------------- keys
def test_keys_page_lists_versions_never_material_and_admins_rotate(ui_db: str) -> None:
    from veilflow.vault.keys import ensure_key
    from veilflow.vault.master import default_master_key

    with psycopg.connect(ui_db, autocommit=True) as conn:
        ensure_key(conn, default_master_key(create=False), "patients", "token")
        got = conn.execute("SELECT wrapped FROM governance.data_keys").fetchone()
        assert got is not None
        wrapped = bytes(got[0])
        viewer = client("victor")
        html = viewer.get("/keys").text
        assert "patients/token" in html and "v1" in html and "Rotate" not in html
        for form in (wrapped.hex(), wrapped.hex()[:16], repr(wrapped)[2:30]):
            assert form not in html
        assert (
            post(viewer, "/keys/rotate", {"key": "patients/token"}, token="victor").status_code
            == 403
        )
        states = conn.execute(
            "SELECT version, state FROM governance.data_keys ORDER BY version"
        ).fetchall()
        assert states == [(1, "active")]
        admin = client("alice")
        r = post(admin, "/keys/rotate", {"key": "patients/token"}, token="alice")
        assert r.status_code == 200 and "patients/token@v2 is active" in r.text
        states = conn.execute(
            "SELECT version, state FROM governance.data_keys ORDER BY version"
        ).fetchall()
        assert states == [(1, "retired"), (2, "active")]
        rows = ui_audit(conn, "ui.key.rotate")
        assert [(t, o, d.get("airflow_user")) for t, o, d in rows] == [
            ("patients/token", "denied", "victor"),
            ("patients/token", "ok", "alice"),
        ]
        bad = post(admin, "/keys/rotate", {"key": "patients/token@v1"}, token="alice")
        assert bad.status_code == 400


# ------------------------------------------------------------------------------- audit
def test_audit_filters_and_chain_verification(ui_db: str) -> None:
    from veilflow.vault.audit import record
    from veilflow.vault.audit import verify as audit_verify

    with psycopg.connect(ui_db, autocommit=True) as conn:
        record(
            conn, "reidentify.values", target="patients.email", purpose="ticket 42 fraud", count=3
        )
        record(conn, "key.use", target="patients/token", outcome="denied")
        c = client("victor")
        only = c.get("/audit", params={"action": "reidentify"}).text
        assert "reidentify.values" in only and "key.use" not in only
        denied = c.get("/audit", params={"outcome": "denied"}).text
        assert "key.use" in denied and "reidentify.values" not in denied
        (total,) = conn.execute("SELECT count(*) FROM governance.audit_log").fetchone() or (0,)
        ok = c.get("/audit", params={"verify_chain": "1"}).text
        assert f"Audit chain intact: {total} row(s) verified" in ok
        head = audit_verify(conn).head
        assert f'<span class="mono anchor">{total}:{head}</span>' in ok  # the anchor, whole
        conn.execute("ALTER TABLE governance.audit_log DISABLE TRIGGER audit_log_append_only")
        conn.execute(
            "UPDATE governance.audit_log SET count = 300 WHERE action = 'reidentify.values'"
        )
        conn.execute("ALTER TABLE governance.audit_log ENABLE TRIGGER audit_log_append_only")
        (seq,) = conn.execute(
            "SELECT seq FROM governance.audit_log WHERE action = 'reidentify.values'"
        ).fetchone() or (None,)
        broken = c.get("/audit", params={"verify_chain": "1"}).text
        assert f"Audit chain BROKEN at row {seq}" in broken


def test_names_from_the_url_and_the_store_are_escaped(ui_db: str) -> None:
    hostile = "<img src=x onerror=alert(1)>"
    html = client("victor").get(f"/lineage/{quote(hostile, safe='')}").text
    assert hostile not in html and "&lt;img src=x onerror=alert(1)&gt;" in html
    with psycopg.connect(ui_db, autocommit=True) as conn:
        from veilflow.vault.audit import record

        record(conn, "key.use", target=hostile, details={"note": hostile})
    audit = client("victor").get("/audit").text
    assert hostile not in audit and "&lt;img src=x" in audit
