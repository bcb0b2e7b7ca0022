"""Lower-case names in chat positions, clock times as people write them, and what the trained
detector's findings are held to (a phone's shape, no lab value as a place, no English words
as a name)."""

from __future__ import annotations

import pytest

from veilflow.detect.scanner import Scanner, scanner_for
from veilflow.detect.speakers import find_lower_names
from veilflow.policy.detection import DetectionSettings


@pytest.fixture(scope="module")
def scanner() -> Scanner:
    return scanner_for(DetectionSettings(detector="none"))


def found(scanner: Scanner, text: str) -> list[tuple[str, str]]:
    return [(text[s.start : s.end], s.entity) for s in scanner.scan_text(text)]


@pytest.mark.parametrize(
    ("text", "name"),
    [
        ("ioana: running late\nmihai: ok no worries", "ioana"),
        ("[09:12] tuuli: on it\n[09:13] agent: thanks", "tuuli"),
        ("user: hi its esra again\nagent: hello", "esra"),
        ("ok thanks ioana!", "ioana"),
        ("hello my name is sakina salohiddinov, my card was declined", "sakina salohiddinov"),
    ],
)
def test_lower_case_names_in_chat_positions(scanner: Scanner, text: str, name: str) -> None:
    assert (name, "PERSON") in found(scanner, text)


@pytest.mark.parametrize(
    "text",
    [
        "agent: who is this?\nuser: yes\nbot: ok",  # roles, not names
        "note: call back tomorrow",  # one "word:" is a label, not a chat
        "thanks again, see you",
        "i'm gonna call later",
        "this is urgent",
        "hey guys, im home",
    ],
)
def test_chat_words_and_roles_are_not_names(scanner: Scanner, text: str) -> None:
    assert not [e for _, e in found(scanner, text) if e == "PERSON"]


@pytest.mark.parametrize(
    ("text", "name"),
    [
        # Outside chats too: tickets and notes typed in lower case.
        ("User lenin rubilar reports login failures from 10.0.0.7", "lenin rubilar"),
        ("User kwesi dwamena oppong reports login failures", "kwesi dwamena oppong"),
        ("caller: my wife, juvenal briceño. she rang twice", "juvenal briceño"),
        ("Customer jsmith logged in twice", "jsmith"),
        ("my son, kofi, is sick", "kofi"),
    ],
)
def test_lower_case_names_after_a_role_or_kin_word(scanner: Scanner, text: str, name: str) -> None:
    assert (name, "PERSON") in found(scanner, text)


@pytest.mark.parametrize(
    "text",
    [
        "patient denies pain",  # English words after the role word
        "patient is stable.",
        "user account xyz locked",  # no pause or verb of people after the last word
        "customer service reports an outage",
        "user admin reset the password",  # a role, not a name
        "user kofi and ama, both",  # an English word inside: not one name
        "the user interface is slow.",
    ],
)
def test_words_after_a_role_word_that_are_no_name(scanner: Scanner, text: str) -> None:
    assert not [e for _, e in found(scanner, text) if e == "PERSON"]


def test_find_lower_names_needs_two_turns_for_a_speaker() -> None:
    never = lambda _w: False  # noqa: E731 - no English word at all
    assert list(find_lower_names("ioana: hi", never)) == []
    assert len(list(find_lower_names("ioana: hi\nmihai: hey", never))) == 2


@pytest.mark.parametrize(
    ("text", "time"),
    [
        ("Call me at 6pm please.", "6pm"),
        ("See you at 11 AM tomorrow", "11 AM"),
        ("we open 9.15am", "9.15am"),
        ("meet at 14.30 today", "14.30"),
        ("from 9h30 onwards", "9h30"),
        ("start at 0900 hrs", "0900 hrs"),
        ("back at 3 o'clock", "3 o'clock"),
        ("arrived 18:45h", "18:45h"),
    ],
)
def test_clock_times_as_people_write_them(scanner: Scanner, text: str, time: str) -> None:
    assert (time, "DATE_TIME") in found(scanner, text)


@pytest.mark.parametrize("text", ["Version 9.30 released", "Paid 14.30 EUR", "raised to 1.50"])
def test_a_dotted_number_without_a_time_word_is_no_time(scanner: Scanner, text: str) -> None:
    assert not found(scanner, text)


def test_a_date_and_time_is_no_phone_number(scanner: Scanner) -> None:
    text = "[29.03.2023 17:00] agent: hello"
    assert not [e for _, e in found(scanner, text) if e == "PHONE_NUMBER"]


def test_a_chart_number_is_a_medical_record_number(scanner: Scanner) -> None:
    assert ("15-59-72-78", "MEDICAL_RECORD_NUMBER") in found(scanner, "Added to chart 15-59-72-78.")
    assert not found(scanner, "see the chart below; pie chart 2024 results")


@pytest.mark.parametrize(
    ("text", "entity"),
    [
        ("Good morning", "PERSON"),  # English words, no given name among them
        ("What", "PERSON"),
        ("K+ 4.9 mmol/L", "LOCATION"),  # a lab value
        ("7990953", "PHONE_NUMBER"),  # a bare run of digits: a reference
        ("HbA1c 8.2%", "DATE_TIME"),  # a lab value
    ],
)
def test_detector_findings_that_are_dropped(scanner: Scanner, text: str, entity: str) -> None:
    assert scanner._learned_span(text, 0, len(text), entity) is None


@pytest.mark.parametrize(
    ("text", "entity"),
    [
        ("Esat Yılmaz", "PERSON"),
        ("Grace Baker", "PERSON"),  # English words, but a given name among them
        ("Bergrøa 631, 0669 Ruthnes", "LOCATION"),
        ("412 1363", "PHONE_NUMBER"),
        ("+45 1234 5678", "PHONE_NUMBER"),
        ("46244845", "PHONE_NUMBER"),  # eight digits: Danish and Norwegian numbers
        ("29.03.2023", "DATE_TIME"),
    ],
)
def test_detector_findings_that_are_kept(scanner: Scanner, text: str, entity: str) -> None:
    assert scanner._learned_span(text, 0, len(text), entity) == (0, len(text))


def test_a_weak_name_guess_opening_a_sentence_as_an_english_word_is_dropped(
    scanner: Scanner,
) -> None:
    text = "Agent: Thanks for holding. Can I have your email?"
    assert not [e for _, e in found(scanner, text) if e == "PERSON"]
    assert ("Aino", "PERSON") in found(scanner, "Thanks for holding, Aino. Can I help?")
