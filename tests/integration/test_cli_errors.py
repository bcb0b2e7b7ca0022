"""The CLI turns every expected failure into one line on stderr and a non-zero exit code,
without a traceback and without a value from the data."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import psycopg

VEILFLOW = str(Path(sys.executable).parent / "veilflow")


def veilflow(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [VEILFLOW, *args],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, **(env or {})},
        check=False,
    )


def one_line(out: subprocess.CompletedProcess[str]) -> str:
    lines = [ln for ln in out.stderr.splitlines() if ln.strip()]
    assert "Traceback" not in out.stderr, out.stderr
    assert len(lines) == 1, out.stderr
    return lines[0]


def test_malformed_policy(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("dataset: x\ncolumns: [unclosed\n")
    out = veilflow("check", str(bad))
    assert out.returncode == 2
    assert one_line(out).startswith(f"error: {bad}:")


def test_unknown_parameter_names_file_line_and_field(
    tmp_path: Path, customers_policy_path: Path
) -> None:
    p = tmp_path / "p.yaml"
    p.write_text(
        customers_policy_path.read_text().replace(
            "{action: tokenize, keep_domain: true}", "{action: tokenize, keep_domian: true}", 1
        )
    )
    out = veilflow("check", str(p))
    assert out.returncode == 2
    line = one_line(out)
    assert "columns.email.keep_domian" in line and "unknown parameter" in line
    assert f"{p}:" in line


def test_database_down(tmp_path: Path, customers_policy_path: Path) -> None:
    out = veilflow(
        "run",
        str(customers_policy_path),
        env={"VEILFLOW_DATABASE_URL": f"postgresql://u:pw@/veilflow?host={tmp_path}"},
    )
    assert out.returncode == 4
    line = one_line(out)
    assert "cannot connect to PostgreSQL" in line and ":pw@" not in line


def test_schema_drift_exit_code_and_nothing_published(
    seeded_db: str, customers_policy_path: Path
) -> None:
    with psycopg.connect(seeded_db, autocommit=True) as conn:
        conn.execute("ALTER TABLE restricted.customers ADD COLUMN nickname text")
        out = veilflow("run", str(customers_policy_path))
        exists = conn.execute("SELECT to_regclass('anonymized.customers')").fetchone()
    assert out.returncode == 3
    assert "schema drift" in one_line(out) and "nickname" in out.stderr
    assert exists == (None,)


def test_runs_show_picks_the_run_asked_for(conn: psycopg.Connection) -> None:
    for run_id, dataset, started in (("old", "a", "2026-01-01"), ("new", "b", "2026-02-01")):
        conn.execute(
            "INSERT INTO governance.runs (run_id, dataset, policy_hash, status, started_at)"
            " VALUES (%s, %s, 'h', 'published', %s)",
            (run_id, dataset, started),
        )
    shown = veilflow("runs", "show")
    assert shown.stdout.startswith("run new of b")
    # Every veilflow command the summary suggests exists as written.
    suggested = shown.stdout.split("where to look next:")[1].splitlines()
    commands = [
        ln.split("   ")[0].split()
        for ln in suggested
        if ln.split() and Path(ln.split()[0]).name == "veilflow"
    ]
    assert [c[1:3] for c in commands] == [
        ["runs", "show"],
        ["lineage", "show"],
        ["audit", "verify"],
    ]
    for command in commands:
        helped = veilflow(*[a.strip("'") for a in command[1:]], "--help")
        assert helped.returncode == 0 and "Usage" in helped.stdout, helped.stderr
    assert veilflow("runs", "show", "old").stdout.startswith("run old of a")
    assert veilflow("runs", "show", "--dataset", "a").stdout.startswith("run old of a")
    missing = veilflow("runs", "show", "nope")
    assert missing.returncode == 1 and one_line(missing) == "error: no such run"


def test_run_prints_its_progress_and_nothing_else_on_stderr(
    seeded_db: str, customers_policy_path: Path
) -> None:
    out = veilflow("run", str(customers_policy_path))
    assert out.returncode == 0, out.stderr
    lines = [ln for ln in out.stderr.splitlines() if ln.strip()]
    # Only the run's own progress lines: no library's log chatter without --verbose.
    assert lines and all(ln.startswith("  ") for ln in lines), out.stderr
    assert lines[0].startswith("  extracted 2,000 rows")
    assert any(ln.startswith("  gate: no raw value survives: ") for ln in lines)
    assert lines[-1].startswith("  gate passed")
    assert out.stdout.startswith("run ") and "published" in out.stdout.splitlines()[0]
