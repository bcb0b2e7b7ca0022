"""Dates in words, weekdays, months of a year and ages over 89 (HIPAA Safe Harbor's date
elements), in notes, tickets, chats and letters; and the numbers and words that are not."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from veilflow.detect.scanner import Scanner


@pytest.fixture(scope="module")
def patterns_only() -> Scanner:
    return Scanner(use_ner=False)


def found(scanner: Scanner, text: str, entity: str) -> list[str]:
    return [text[s.start : s.end] for s in scanner.scan_text(text) if s.entity == entity]


@pytest.mark.parametrize(
    ("text", "date"),
    [
        ("Seen on the third of July for follow-up.", "third of July"),
        ("Admitted the 3rd of July 2021, discharged later.", "3rd of July 2021"),
        ("Dear Sir, further to our meeting on July the third,", "July the third"),
        ("Surgery booked for 14 February.", "14 February"),
        ("pt admitted 3 July 2021", "3 July 2021"),
        ("Discharged July 3rd.", "July 3rd"),
        ("Symptoms began in March and worsened.", "March"),
        ("No relapse since mid-June.", "June"),
        ("Last seen July of 2019.", "July of 2019"),
        ("Labs drawn 03-JUL-2021 0800.", "03-JUL-2021"),
        ("DOB 14FEB1931", "14FEB1931"),
        ("Next review Jul-03-2022.", "Jul-03-2022"),
        ("Card exp 07/2021 per ticket", "07/2021"),
        ("Onset 2019-11 per family.", "2019-11"),
        ("Can you come in on Tuesday?", "Tuesday"),
        ("He fell last Friday at home.", "last Friday"),
        ("See you next Monday :)", "next Monday"),
        ("Clinic Tue 3 July, bring bloods.", "Tue"),
        ("Sent Fri, 12/03 to the GP.", "Fri"),
    ],
)
def test_dates_in_words(patterns_only: Scanner, text: str, date: str) -> None:
    got = found(patterns_only, text, "DATE_TIME")
    assert any(date in g for g in got), got


@pytest.mark.parametrize(
    "text",
    [
        "He may visit in the morning; we March forward; an august institution.",
        "The sun was out; Sat down and waited; Wed the bride in the chapel.",
        "Meeting at the office, Mondays are busy.",
        "Version 2.3 shipped; page 4 of 12; 3 items; 1/2 tablet; ratio 3/4.",
        "Score 2019-13 and build 1999-00 are not months.",
        "Take 2 tablets of 500 mg; total 129.90 EUR.",
    ],
)
def test_not_dates(patterns_only: Scanner, text: str) -> None:
    assert found(patterns_only, text, "DATE_TIME") == []


@pytest.mark.parametrize(
    ("text", "age"),
    [
        ("A 93-year-old woman presents with dyspnoea.", "93"),
        ("93 year old male, lives alone.", "93"),
        ("Pt is a 101 y/o female.", "101"),
        ("96yo M, fall at home", "96"),
        ("She is 95 years of age.", "95"),
        ("Patient, aged 95, was alert.", "95"),
        ("Age: 101", "101"),
        ("At the age of 92 he stopped driving.", "92"),
        ("She turned 90 last week!", "90"),
        ("celebrated her 95th birthday on the ward", "95"),
        ("A woman in her 90s, independent.", "90s"),
        ("He is in his late nineties.", "nineties"),
        ("A nonagenarian with dementia.", "nonagenarian"),
        ("Centenarian, 2 sons.", "Centenarian"),
    ],
)
def test_ages_over_89(patterns_only: Scanner, text: str, age: str) -> None:
    assert age in found(patterns_only, text, "AGE_OVER_89")


@pytest.mark.parametrize(
    "text",
    [
        "An 85-year-old man, aged 45 son, age: 72 wife.",
        "Temp 99 F, SpO2 95%, HR 92 bpm, BP 120/80, weight 95 kg.",
        "Cheese aged 95 days; 120 beds; Route 95; room 101; 98.6 degrees.",
        "Music of the 90s and the nineties; in the 1990s; 95 years ago.",
        "Aged 95.5% pure; age 90 % of cases.",
        "Ticket 9091 and order 1102 and 2095.",
    ],
)
def test_not_ages_over_89(patterns_only: Scanner, text: str) -> None:
    assert found(patterns_only, text, "AGE_OVER_89") == []


@given(st.integers(0, 89), st.sampled_from(["{n}-year-old", "aged {n}", "age: {n}", "{n} y/o"]))
def test_ages_under_90_are_never_flagged(n: int, form: str) -> None:
    text = f"A {form.format(n=n)} patient."
    assert found(_SCANNER, text, "AGE_OVER_89") == []


@given(st.integers(90, 125), st.sampled_from(["{n}-year-old", "aged {n}", "age: {n}", "{n} y/o"]))
def test_every_age_from_90_is_flagged(n: int, form: str) -> None:
    text = f"A {form.format(n=n)} patient."
    assert found(_SCANNER, text, "AGE_OVER_89") == [str(n)]


_MONTHS = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
]


@given(st.integers(1, 31), st.sampled_from(_MONTHS), st.integers(1900, 2030))
def test_day_month_year_in_any_order(day: int, month: str, year: int) -> None:
    for date in (f"{day} {month} {year}", f"{month} {day}, {year}", f"{day} {month}"):
        text = f"Seen on {date} in clinic."
        assert any(date in g for g in found(_SCANNER, text, "DATE_TIME")), date


_SCANNER = Scanner(use_ner=False)
