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
        # One case per operator kind: each checks its parameters against its own model.
        (("age: keep", "age: {action: keep, why: x}"), 7, "columns.age.why", "(operator keep)"),
        (("age: keep", "age: {action: drop, soon: 1}"), 7, "columns.age.soon", "(operator drop)"),
        (
            ("keep_first: 1", "char: '**'"),
            6,
            "columns.name.char",
            "at most 1 character (operator mask)",
        ),
        (
            ("age: keep", "age: {action: redact, replacement: [a]}"),
            7,
            "columns.age.replacement",
            "valid string (operator redact)",
        ),
        (
            ("{action: tokenize}", "{action: tokenize, format: short}"),
            5,
            "columns.id.format",
            "'readable' or 'preserve' (operator tokenize)",
        ),
        (
            ("age: keep", "age: {action: ff1, alphabet: digits, luhn: maybe}"),
            7,
            "columns.age.luhn",
            "valid boolean, unable to interpret input (operator ff1)",
        ),
        (
            ("age: keep", "age: {action: ff1, alphabet: hex, luhn: true}"),
            7,
            "columns.age",
            "luhn needs alphabet 'digits' (operator ff1)",
        ),
        (
            ("{action: mask, keep_first: 1}", "{action: surrogate, entity: PERSN}"),
            6,
            "columns.name.entity",
            "(operator surrogate)",
        ),
        (
            ("{action: mask, keep_first: 1}", "{action: surrogate}"),
            6,
            "columns.name.entity",
            "Field required (operator surrogate)",
        ),
        (
            ("age: keep", "age: {action: generalize, bucket: 0}"),
            7,
            "columns.age.bucket",
            "greater than or equal to 1 (operator generalize)",
        ),
        (
            ("age: keep", "age: {action: generalize, bucket: 10, truncate: year}"),
            7,
            "columns.age",
            "exactly one of keep_prefix, bucket, truncate",
        ),
        (
            ("age: keep", "age: {action: date_shift, max_days: 40000, subject: id}"),
            7,
            "columns.age.max_days",
            "less than or equal to 36500 (operator date_shift)",
        ),
        (
            ("age: keep", "age: {action: suppress, rows: all}"),
            7,
            "columns.age.rows",
            "unknown parameter (operator suppress)",
        ),
        (
            ("age: keep", "age: {action: scrub_text, entities: [person]}"),
            7,
            "columns.age.entities",
            "upper-case identifiers, got ['person'] (operator scrub_text)",
        ),
        (
            ("age: keep", "age: {action: scrub_text, with: shred}"),
            7,
            "columns.age.with",
            "replacement must be one of",
        ),
        (
            (
                "age: keep",
                "age:\n    action: scrub_text\n    with:\n"
                "      EMAIL_ADDRESS: {action: tokenize, keep_domian: true}",
            ),
            10,
            "columns.age.with.EMAIL_ADDRESS.keep_domian",
            "unknown parameter (operator tokenize)",
        ),
    ],
)
def test_operator_parameters_are_checked_at_load(
    change: tuple[str, str], line: int, field: str, words: str
) -> None:
    """Parsing alone finds a wrong parameter: no plan, no key, no database."""
    with pytest.raises(PolicyError) as info:
        parse_policy(BASE.replace(*change), file="p.yaml")
    assert info.value.line == line, str(info.value)
    assert info.value.field == field
    assert words in str(info.value)
    assert "p.yaml" in str(info.value)


def test_every_operator_has_its_config_in_the_policy_layer() -> None:
    """The registry's operators and the policy layer's config models name the same
    operators, and each operator takes the model the policy was checked with."""
    from veilflow.policy.operators import OPERATOR_CONFIGS
    from veilflow.registry import OPERATORS

    assert {name: op.Config for name, op in OPERATORS.items()} == OPERATOR_CONFIGS


def test_a_loaded_column_carries_its_validated_config() -> None:
    """The plan takes the config checked at load; the hash stays over what was written."""
    policy = parse_policy(BASE)
    name = policy.columns["name"]
    assert name.params == {"keep_first": 1}
    assert name.config.model_dump() == {"char": "*", "keep_first": 1, "keep_last": 0}
    plan = plan_policy(policy, KEYS)
    assert plan.columns[1].operator.config is name.config


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
