"""Policy loading: typed models, stable hash, errors that name file, line and field."""

from __future__ import annotations

from pathlib import Path

import pytest

from veilflow.errors import PolicyError
from veilflow.pipeline.plan import plan_policy
from veilflow.policy import load_policy, parse_policy
from veilflow.transform.keys import LocalKeyProvider

KEYS = LocalKeyProvider(b"k" * 32)

BASE = """\
dataset: people
source: {table: restricted.people, key: id}
target: {table: anonymized.people}
columns:
  id: {action: tokenize}
  name: {action: mask, keep_first: 1}
  age: keep
"""


def test_customers_policy_loads_and_plans(customers_policy_path: Path) -> None:
    policy = load_policy(customers_policy_path)
    assert policy.dataset == "customers"
    assert policy.source.table == "restricted.customers"
    plan = plan_policy(policy, KEYS)
    assert [c.name for c in plan.columns] == list(policy.columns)


def test_hash_ignores_formatting_and_comments() -> None:
    a = parse_policy(BASE)
    b = parse_policy(
        "# a comment\n" + BASE.replace("  age: keep", "  age:\n    action: keep   # still keep")
    )
    assert a.hash == b.hash
    c = parse_policy(BASE.replace("keep_first: 1", "keep_first: 2"))
    assert c.hash != a.hash


def test_incremental_is_part_of_the_meaning_and_absent_keeps_the_hash() -> None:
    """``incremental`` changes the hash (a run of the other policy cannot append to this
    one's version); a policy without it hashes as it did before the field existed."""
    plain = parse_policy(BASE)
    appending = parse_policy(BASE + "incremental: {cursor: id}\n")
    assert appending.incremental is not None and appending.incremental.cursor == "id"
    assert appending.hash != plain.hash
    import hashlib
    import json

    meaning = plain.model_dump(mode="json")
    meaning.pop("incremental")
    canonical = json.dumps(meaning, sort_keys=True, separators=(",", ":"))
    assert plain.hash == hashlib.sha256(canonical.encode()).hexdigest()


def test_shorthand_action() -> None:
    assert parse_policy(BASE).columns["age"].action == "keep"


@pytest.mark.parametrize(
    ("text", "line", "field", "words"),
    [
        (BASE + "bogus: 1\n", 8, "bogus", "unknown field"),
        (BASE.replace("restricted.people", "public.people"), 2, "source.table", "restricted zone"),
        (
            BASE.replace("anonymized.people", "restricted.people"),
            3,
            "target.table",
            "anonymized zone",
        ),
        (BASE.replace("  id: {action: tokenize}\n", ""), None, None, "source key"),
        (BASE.replace("dataset: people", "dataset: People Data"), 1, "dataset", "identifier"),
        (BASE + "chunk_rows: lots\n", 8, "chunk_rows", "integer"),
        (BASE + "unlisted: maybe\n", 8, "unlisted", "'fail' or 'drop'"),
        (BASE + "access: {ml_engineer: [restricted2]}\n", 8, "access", "unknown zone"),
        (BASE + "incremental: {cursor: created}\n", None, None, "not a declared column"),
        (BASE + "incremental: {cursor: Id}\n", 8, "incremental.cursor", "identifier"),
        (BASE + "incremental: {column: id}\n", 8, "incremental.cursor", "required field"),
        ("dataset: [unclosed\n", 2, None, "malformed YAML"),
        ("- just\n- a list\n", 1, None, "YAML mapping"),
    ],
)
def test_errors_name_file_line_and_field(
    text: str, line: int | None, field: str | None, words: str
) -> None:
    with pytest.raises(PolicyError) as info:
        parse_policy(text, file="p.yaml")
    err = info.value
    assert err.file == "p.yaml"
    if line is not None:
        assert err.line == line, str(err)
    if field is not None:
        assert err.field == field
    assert words in str(err)


@pytest.mark.parametrize(
    ("change", "line", "field", "words"),
    [
        (
            ("{action: tokenize}", "{action: encrypt_magic}"),
            5,
            "columns.id.action",
            "unknown operator",
        ),
        (
            ("keep_first: 1", "keep_first: 1, colour: red"),
            6,
            "columns.name.colour",
            "unknown parameter",
        ),
        (("keep_first: 1", "keep_first: -3"), 6, "columns.name.keep_first", "greater than"),
    ],
)
def test_operator_parameters_are_checked_at_plan_time(
    change: tuple[str, str], line: int, field: str, words: str
) -> None:
    policy = parse_policy(BASE.replace(*change), file="p.yaml")
    with pytest.raises(PolicyError) as info:
        plan_policy(policy, KEYS)
    assert info.value.line == line
    assert info.value.field == field
    assert words in str(info.value)
    assert "p.yaml" in str(info.value)


def test_missing_file_is_a_policy_error(tmp_path: Path) -> None:
    with pytest.raises(PolicyError, match="not found"):
        load_policy(tmp_path / "nope.yaml")


def test_check_needs_no_database_and_no_key(
    tmp_path: Path, customers_policy_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``veilflow check`` validates operators without binding keys: with no state folder,
    no master key and a database URL that leads nowhere, it still answers."""
    from typer.testing import CliRunner

    from veilflow.cli import app

    monkeypatch.setenv("VEILFLOW_HOME", str(tmp_path / "empty-home"))
    monkeypatch.setenv("VEILFLOW_DATABASE_URL", "postgresql://nobody@127.0.0.1:9/none")
    monkeypatch.delenv("VEILFLOW_MASTER_KEY", raising=False)
    out = CliRunner().invoke(app, ["check", str(customers_policy_path)])
    assert out.exit_code == 0, out.output
    assert "ok, dataset customers" in out.output
    assert not (tmp_path / "empty-home").exists()
    bad = tmp_path / "bad.yaml"
    bad.write_text(customers_policy_path.read_text().replace("keep_domain: true", "colour: red", 1))
    out = CliRunner().invoke(app, ["check", str(bad)])
    assert isinstance(out.exception, PolicyError)
    assert out.exception.field == "columns.email.colour"
