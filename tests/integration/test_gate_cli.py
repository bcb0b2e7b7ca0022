"""`veilflow validate` runs the gate alone on the staged candidate; `veilflow risk` reads a
table; the rescan counts only personal data that survived from the source row."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import pandas as pd
import psycopg
import pytest
import yaml
from psycopg import sql
from typer.testing import CliRunner

from veilflow.cli import app
from veilflow.errors import ValidationFailed
from veilflow.pipeline.keys import default_key_provider
from veilflow.pipeline.manifest import load_manifest
from veilflow.pipeline.stages import OutputsHook, extract, gate_context, transform_chunk
from veilflow.policy.loader import parse_policy
from veilflow.policy.model import Policy
from veilflow.validate.report import CheckResult
from veilflow.validate.rescan import residual_pii
from veilflow.zones.run_tables import RunTables

pytestmark = pytest.mark.slow

BASE = Path(__file__).resolve().parents[2] / "policies" / "customers.yaml"


def simple_policy(tmp_path: Path, **validation: object) -> tuple[Policy, Path]:
    data = yaml.safe_load(BASE.read_text())
    data.pop("releases", None)  # DP releases and risk ceilings have tests of their own
    data.pop("risk", None)
    data.pop("utility", None)
    data.pop("synthetic", None)
    data.pop("incremental", None)  # every run a full run; appending has tests of its own
    data["columns"].update({"customer_id": {"action": "tokenize"}, "note": {"action": "keep"}})
    data["privacy"] = {"quasi_identifiers": ["gender"], "sensitive": "diagnosis"}
    data["validation"] = {"canaries": 0, **validation}
    path = tmp_path / "customers.yaml"
    path.write_text(yaml.safe_dump(data))
    return parse_policy(path.read_text(), file=str(path)), path


def stage(policy: Policy, run_id: str, outputs: OutputsHook | None = None) -> RunTables:
    keys = default_key_provider()
    for chunk in extract(policy, run_id, keys).chunks:
        transform_chunk(policy, run_id, chunk, keys, outputs_hook=outputs)
    return RunTables(policy.dataset, run_id)


def no_personal_notes(raw: pd.DataFrame, out: pd.DataFrame) -> pd.DataFrame:
    out.loc[out["note"].notna(), "note"] = "no personal data here"
    return out


def test_validate_command_passes_then_refuses(seeded_db: str, tmp_path: Path) -> None:
    policy, path = simple_policy(tmp_path)
    stage(policy, "cli1", no_personal_notes)  # the gate checks the notes as they are written
    out = CliRunner().invoke(app, ["validate", str(path), "--format", "json"])
    assert out.exit_code == 0, out.output
    report = json.loads(out.output)
    assert report["passed"] and report["run_id"] == "cli1"

    rt = stage(policy, "cli2")  # the notes still hold names, e-mails and phone numbers
    out = CliRunner().invoke(app, ["validate", str(path), "--run", "cli2"])
    # ``app`` raises; the console entry point turns it into exit code 8.
    assert isinstance(out.exception, ValidationFailed), out.output
    assert out.exception.exit_code == 8
    assert "FAIL residual_pii" in out.output
    with psycopg.connect(seeded_db) as c:
        raw = [r[0] for r in c.execute("SELECT email FROM restricted.customers").fetchall()]
        moved = c.execute(
            "SELECT quarantine_table FROM governance.quarantined WHERE run_id = 'cli2'"
        ).fetchone()
    assert not any(e in out.output for e in raw)
    assert moved is not None and moved[0].startswith("quarantine.")
    assert RunTables("customers", "cli2").candidate_name not in out.output or rt


def test_risk_command_on_a_table(seeded_db: str) -> None:
    out = CliRunner().invoke(
        app,
        [
            "risk",
            "restricted.customers",
            "--qi",
            "gender",
            "--sensitive",
            "diagnosis",
            "--format",
            "json",
        ],
    )
    assert out.exit_code == 0, out.output
    data = json.loads(out.output)
    with psycopg.connect(seeded_db) as c:
        sizes = dict(
            c.execute(
                "SELECT gender, count(*) FROM restricted.customers GROUP BY gender"
            ).fetchall()
        )
    assert data["k"] == min(sizes.values()) and data["rows"] == 2000
    expected: dict[str, int] = {}
    for n in sizes.values():
        expected[str(n)] = expected.get(str(n), 0) + 1
    assert data["class_sizes"] == expected


def rescan_with_stub(url: str, policy: Policy, run_id: str) -> CheckResult:
    """The rescan with a stub engine that reports what follows "write to " as an e-mail
    address, wherever a text starts so."""

    def stub(texts: Sequence[str], entities: frozenset[str]) -> list[list[tuple[str, str]]]:
        return [
            [("EMAIL_ADDRESS", t.removeprefix("write to "))] if t.startswith("write to ") else []
            for t in texts
        ]

    with psycopg.connect(url) as c:
        return residual_pii(c, gate_context(policy, run_id, load_manifest(c, run_id)), stub)


def test_rescan_counts_what_survived_not_what_replaced_it(seeded_db: str, tmp_path: Path) -> None:
    """A stub scanner reports what follows "write to" as an e-mail address; the candidate
    keeps one source address and replaces another: only the kept one counts."""
    policy, _ = simple_policy(tmp_path, rescan_rows=0)
    rt = stage(policy, "rescan")
    with psycopg.connect(seeded_db, autocommit=True) as c:
        email = c.execute(
            sql.SQL("SELECT email FROM {} WHERE _vf_row = 3").format(rt.snapshot)
        ).fetchone()
        assert email is not None
        c.execute(sql.SQL("UPDATE {} SET note = NULL").format(rt.candidate))
        c.execute(
            sql.SQL("UPDATE {} SET note = %s WHERE _vf_row = 3").format(rt.candidate),
            (f"write to {email[0]}",),
        )
        c.execute(
            sql.SQL(
                "UPDATE {} SET note = 'write to tok_v1_x@example.com' WHERE _vf_row = 4"
            ).format(rt.candidate)
        )

    result = rescan_with_stub(seeded_db, policy, "rescan")
    assert result.observed == 1 and not result.passed
    assert result.details["findings"] == {"note": {"EMAIL_ADDRESS": 1}}
    assert result.details["replacements_seen"] == {"EMAIL_ADDRESS": 1}


def test_rescan_counts_whole_words_of_the_column_and_whole_values_of_the_row(
    seeded_db: str, tmp_path: Path
) -> None:
    """What a replacement may share with the source by chance does not count: a word of
    another column (a fake first name that is the row's real one) or letters inside a word.
    What survived does: a whole word of the column's own source, a whole other value."""
    policy, _ = simple_policy(tmp_path, rescan_rows=0)
    rt = stage(policy, "rescan_words")
    with psycopg.connect(seeded_db, autocommit=True) as c:
        no_note = c.execute(
            sql.SQL(
                "SELECT _vf_row, full_name FROM {} WHERE note IS NULL ORDER BY _vf_row LIMIT 2"
            ).format(rt.snapshot)
        ).fetchall()
        with_note = c.execute(
            sql.SQL(
                "SELECT _vf_row, split_part(note, ' ', 1) FROM {}"
                " WHERE note ~ '^[A-Za-z]{{5,}} ' ORDER BY _vf_row LIMIT 2"
            ).format(rt.snapshot)
        ).fetchall()
        assert len(no_note) == 2 and len(with_note) == 2
        (r1, name1), (r2, name2) = no_note
        (r3, word3), (r4, word4) = with_note
        found = {
            r1: name1.split()[0],  # a word of full_name: chance, not counted
            r2: name2,  # the whole full_name: counted
            r3: word3[1:],  # letters inside a word of the note: not counted
            r4: word4,  # a whole word of the note: counted
        }
        c.execute(sql.SQL("UPDATE {} SET note = NULL").format(rt.candidate))
        for row, text in found.items():
            c.execute(
                sql.SQL("UPDATE {} SET note = %s WHERE _vf_row = %s").format(rt.candidate),
                (f"write to {text}", row),
            )

    result = rescan_with_stub(seeded_db, policy, "rescan_words")
    assert result.observed == 2
    assert result.details["replacements_seen"] == {"EMAIL_ADDRESS": 2}


def test_tokens_rederived_from_raw_values_prove_joinability(seeded_db: str, tmp_path: Path) -> None:
    """With the run's operators at hand, the gate re-derives a sample of deterministic
    outputs from the raw values: equal originals in another table tokenized under the same
    key scope meet on the same token. A token written by anything else is caught."""
    import dataclasses

    import pandas as pd

    from veilflow.pipeline.plan import plan_policy
    from veilflow.transform.base import ChunkContext
    from veilflow.validate.checks import tokens_rederived

    policy, _ = simple_policy(tmp_path)
    rt = stage(policy, "rederive")
    ops = {c.name: c.operator for c in plan_policy(policy, default_key_provider()).kept}

    def recompute(column: str, values: pd.Series) -> pd.Series:
        op = ops[column]
        assert op is not None
        frame = pd.DataFrame({policy.source.key: values})
        return op.apply(values, ChunkContext(frame=frame, key_column=policy.source.key))

    with psycopg.connect(seeded_db) as c:
        ctx = dataclasses.replace(
            gate_context(policy, "rederive", load_manifest(c, "rederive")), recompute=recompute
        )
        clean = {r.column: r for r in tokens_rederived(c, ctx, sample=200)}
        assert {"customer_id", "email", "iban", "ip_address", "phone"} <= set(clean)
        assert all(r.passed and r.details["sampled"] > 0 for r in clean.values())
        c.execute(
            sql.SQL(
                "UPDATE {} SET email = 'tok_v1_aaaaaaaaaaaaaaaaaaaaaaaaaa@x.org' WHERE _vf_row = 2"
            ).format(rt.candidate)
        )
        bad = {r.column: r for r in tokens_rederived(c, ctx, sample=200)}
    assert not bad["email"].passed and bad["email"].observed == 1
