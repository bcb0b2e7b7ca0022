"""The batch scanner: NER + rules together, batch equivalence, policy recognizers, bad input."""

from __future__ import annotations

import itertools
import time

import pytest

from veilflow.detect.scan_pool import scan_stream
from veilflow.detect.scanner import Scanner, scanner_for
from veilflow.detect.spans import Span, resolve
from veilflow.policy.detection import (
    DenyListSpec,
    DetectionSettings,
    RegexRecognizerSpec,
)


@pytest.fixture(scope="module")
def scanner() -> Scanner:
    return scanner_for()


def entities(scanner: Scanner, text: str) -> list[tuple[str, str]]:
    return [(text[s.start : s.end], s.entity) for s in scanner.scan_text(text)]


def test_note_with_everything(scanner: Scanner) -> None:
    text = (
        "Hi Maria, Mr. John O'Brien called from (710) 827-3464 about 119 Avery Spring Apt. 721,"
        " Lindsayshire, HI 37016 on 2024-03-05. Mail john.obrien@example.com."
    )
    got = entities(scanner, text)
    assert ("Maria", "PERSON") in got
    assert any(e == "PERSON" and "John O'Brien" in t for t, e in got)
    assert ("(710) 827-3464", "PHONE_NUMBER") in got
    # One address: house number, street, apartment, city, state and ZIP code together.
    assert ("119 Avery Spring Apt. 721, Lindsayshire, HI 37016", "LOCATION") in got
    assert ("2024-03-05", "DATE_TIME") in got
    assert ("john.obrien@example.com", "EMAIL_ADDRESS") in got


def test_european_address(scanner: Scanner) -> None:
    text = "Address: Anna de Vries, Hauptstraße 5, 10115 Berlin, Germany."
    got = entities(scanner, text)
    assert ("Anna de Vries", "PERSON") in got
    assert ("Hauptstraße 5, 10115 Berlin, Germany", "LOCATION") in got


def test_no_pii_in_plain_text(scanner: Scanner) -> None:
    text = (
        "Package arrived damaged; the customer wants a replacement by Friday. "
        "Order #437991, 2 items, total 129.90 EUR. Version 3.1 deployed."
    )
    # A weekday is an element of a date (HIPAA Safe Harbor); the rest is not personal data.
    assert entities(scanner, text) == [("Friday", "DATE_TIME")]


def test_batch_equals_one_by_one(scanner: Scanner) -> None:
    texts = [
        "Spoke with Karl Haglund, +46 8 123 456 78.",
        "",
        "Card 4111 1111 1111 1111.",
        "Login from 10.0.0.7 by ana@x.org",
        "no pii here at all",
    ]
    batch = scanner.scan(texts).spans
    assert batch == [scanner.scan_text(t) for t in texts]
    assert batch[1] == []


def test_spans_do_not_overlap_and_entities_filter(scanner: Scanner) -> None:
    text = "Jane Smith <jane.smith@example.com> 555-123-4567"
    spans = scanner.scan_text(text)
    for a, b in itertools.pairwise(spans):
        assert a.end <= b.start
    only = scanner.scan([text], entities=["EMAIL_ADDRESS"]).spans[0]
    assert [s.entity for s in only] == ["EMAIL_ADDRESS"]


def test_resolve_prefers_validated_entities() -> None:
    spans = [
        Span(0, 19, "PHONE_NUMBER", 0.7),
        Span(0, 19, "CREDIT_CARD", 1.0),
        Span(25, 30, "PERSON", 0.6),
        Span(25, 35, "PERSON", 0.9),
    ]
    assert resolve(spans) == [Span(0, 19, "CREDIT_CARD", 1.0), Span(25, 35, "PERSON", 0.9)]


def test_policy_recognizers_and_lists() -> None:
    settings = DetectionSettings(
        recognizers=[
            RegexRecognizerSpec(
                entity="EMPLOYEE_ID", regex=r"\bE-\d{6}\b", score=0.4, context=["employee", "staff"]
            )
        ],
        deny_lists=[DenyListSpec(entity="PROJECT", terms=["Bluebird", "Project Nightjar"])],
        allow_list=["Jane Smith"],
        thresholds={"PHONE_NUMBER": 0.99},
    )
    s = Scanner(settings, use_ner=False)
    text = (
        "Employee E-123456 on project nightjar met Jane Smith; other id E-654321; "
        "call 555-123-4567."
    )
    got = [(text[x.start : x.end], x.entity) for x in s.scan_text(text)]
    assert ("E-123456", "EMPLOYEE_ID") in got  # 0.4 + context boost passes 0.5
    assert ("E-654321", "EMPLOYEE_ID") not in got  # no context: below threshold
    assert ("nightjar", "PROJECT") not in got and ("project nightjar", "PROJECT") in got
    assert all(t != "Jane Smith" for t, _ in got)  # allow list
    assert all(e != "PHONE_NUMBER" for _, e in got)  # per-entity threshold


def test_bad_input_never_crashes_and_is_reported(scanner: Scanner) -> None:
    surrogate = b"caf\xe9 Jane".decode("utf-8", "surrogateescape")
    values: list[object] = [
        None,
        "",
        b"\xff\xfe\x00bad",
        surrogate,
        float("nan"),
        "Zhang Wei 张伟 telefoon +31 20 123 4567, Straße ñ",
        "x\x00y 555-123-4567",
        b"Bob Marley bob@example.com",
    ]
    res = scanner.scan(values)
    assert res.unscannable == [2, 3]
    assert res.spans[0] == res.spans[1] == res.spans[2] == res.spans[3] == res.spans[4] == []
    assert any(s.entity == "PHONE_NUMBER" for s in res.spans[5])
    assert any(s.entity == "PHONE_NUMBER" for s in res.spans[6])
    assert any(s.entity == "EMAIL_ADDRESS" for s in res.spans[7])


def test_one_megabyte_text_patterns_and_rules() -> None:
    filler = "The weather was fine and nothing happened. " * 24_000  # ~1 MB
    text = "Jane Doe wrote first. " + filler + " Finally card 4111 1111 1111 1111 from Jane Doe."
    assert len(text) > 1_000_000
    t0 = time.perf_counter()
    spans = Scanner(use_ner=False).scan_text(text)
    assert time.perf_counter() - t0 < 20
    assert [text[s.start : s.end] for s in spans] == ["Jane Doe", "4111 1111 1111 1111", "Jane Doe"]
    assert spans[1].start > 1_000_000


def test_long_text_goes_through_ner_in_pieces(scanner: Scanner) -> None:
    # NER runs on ~20,000-character pieces; offsets must map back into the whole text.
    filler = "The weather was fine and nothing happened. " * 1_200  # ~52 KB: three pieces
    text = filler + "Yesterday Svetlana Novak visited Potsdam. " + filler
    spans = scanner.scan_text(text)
    got = {(text[s.start : s.end], s.entity) for s in spans}
    assert ("Svetlana Novak", "PERSON") in got
    assert ("Potsdam", "LOCATION") in got


def test_too_long_text_is_unscannable() -> None:
    s = Scanner(DetectionSettings(max_text_chars=1000), use_ner=False)
    res = s.scan(["a" * 1001, "short 555-123-4567"])
    assert res.unscannable == [0]
    assert "longer than" in res.reasons[0]
    assert res.spans[1]


def test_stream_keeps_order_across_workers() -> None:
    texts = [f"ticket {i}: mail user{i}@example.com" for i in range(60)]
    out = [spans for batch in scan_stream(texts, workers=2, batch_size=7) for spans in batch.spans]
    assert len(out) == 60
    for i, (t, spans) in enumerate(zip(texts, out, strict=True)):
        assert [t[s.start : s.end] for s in spans] == [f"user{i}@example.com"]


def test_presidio_analyzer_gets_veilflow_recognizers() -> None:
    from veilflow.detect.presidio import build_analyzer

    analyzer = build_analyzer(DetectionSettings())
    text = "Charge 2221 0000 0000 0009 for Ms. Ana Pop today."  # a Luhn-valid 2-series card
    results = analyzer.analyze(text, language="en")
    cards = [text[r.start : r.end] for r in results if r.entity_type == "CREDIT_CARD"]
    assert "2221 0000 0000 0009" in cards


def test_ner_runs_only_where_words_are_unexplained(scanner: Scanner) -> None:
    explained = "Spoke with Karl Haglund. New email is karl@example.org, balance 12.00 EUR."
    unknown = "Escalated to Aaro Rytkönen-Vaara, who knows the case."
    assert not scanner._needs_ner(explained, scanner.scan([explained]).spans[0])
    assert scanner._needs_ner(unknown, [])
    always = Scanner(DetectionSettings(ner="always"))
    for text in (explained, unknown, "Tapio called about Potsdam."):
        assert {(s.start, s.end, s.entity) for s in always.scan_text(text)} >= {
            (s.start, s.end, s.entity) for s in scanner.scan_text(text) if s.source != "ner"
        }
    got = {(unknown[s.start : s.end], s.entity) for s in scanner.scan_text(unknown)}
    assert ("Aaro Rytkönen-Vaara", "PERSON") in got


@pytest.mark.parametrize(
    ("text", "name"),
    [
        ("Customer Virginia Campbell called about a refund.", "Virginia Campbell"),
        ("Follow-up scheduled with Rose Jordan regarding the invoice.", "Rose Jordan"),
        ("Customer Rose Washington called about a refund.", "Rose Washington"),
        ("Left voicemail; April Parker prefers email.", "April Parker"),
        ("Spoke with Teresa Park. New email is on file.", "Teresa Park"),
        ("Card declined twice, Sandra Mills will retry tomorrow.", "Sandra Mills"),
        ("Left voicemail; Tina Best prefers email.", "Tina Best"),
        ("Spoke with Mason Green. New email is on file.", "Mason Green"),
        ("Customer Annette Thornton Le called about a refund.", "Annette Thornton Le"),
    ],
)
def test_a_name_wins_over_the_place_or_stop_word_inside_it(
    scanner: Scanner, text: str, name: str
) -> None:
    # A place list or a stop word that takes one word of a name leaves the rest of the
    # name behind once the place is replaced; the whole name is one PERSON.
    assert (name, "PERSON") in entities(scanner, text)


@pytest.mark.parametrize(
    ("text", "place"),
    [
        ("Shipped to 28813 Derek Drive, Lake Jennifer.", "28813 Derek Drive, Lake Jennifer"),
        ("She moved to Virginia last year.", "Virginia"),
        ("Office in Jordan, near Amman.", "Jordan"),
    ],
)
def test_places_stay_places(scanner: Scanner, text: str, place: str) -> None:
    got = entities(scanner, text)
    assert (place, "LOCATION") in got
    assert not any(e == "PERSON" for _, e in got)


def test_months_and_sign_offs_are_not_names(scanner: Scanner) -> None:
    got = entities(scanner, "Delivered May 5. Best, the support team")
    assert not any(e == "PERSON" for _, e in got)
