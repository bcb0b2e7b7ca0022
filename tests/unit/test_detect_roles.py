"""The words around a span that make the trained detector's place a person
(``veilflow.detect.roles``), the places they leave alone, the names nothing else found that
those words find, and detector spans cut at line breaks."""

from __future__ import annotations

import pytest

from veilflow.detect.learned_spans import within_lines
from veilflow.detect.roles import find_role_names, person_role


def role(text: str, word: str) -> bool:
    start = text.index(word)
    return person_role(text, start, start + len(word))


@pytest.mark.parametrize(
    ("text", "word"),
    [
        ("Device 35-209900-176148-1 registered to Hoàng Dương was reported stolen.", "Hoàng Dương"),
        ("Cheers for the quick fix!\n-- Ernestina", "Ernestina"),
        ("Kind regards,\nJuan Pérez-Lira", "Juan Pérez-Lira"),
        ("Hi Akosua, your parcel is on its way.", "Akosua"),
        ("agent: who is the holder?\nuser: my wife, Ana Lima. she is away", "Ana Lima"),
        ("Pt Jagvi Jaggi from the north ward", "Jagvi Jaggi"),
        ("[12:01] Omina: hi there\n[12:02] Agent: hello", "Omina"),
        ("Mentor rang back at 5 pm.", "Mentor"),
        ("Hello, this is Uberlinda Ibacache speaking.", "Uberlinda Ibacache"),
    ],
)
def test_a_person_by_the_words_around_it(text: str, word: str) -> None:
    assert role(text, word)


@pytest.mark.parametrize(
    ("text", "word"),
    [
        ("He moved to Kjellerup last year.", "Kjellerup"),
        ("She still lives in Tylstrup, near the church.", "Tylstrup"),
        ("Oslo: rain all day", "Oslo"),  # one "word:" line is a label, not a chat turn
        ("Weather in Oslo: rain", "Oslo"),
        ("Deliver to Quinta Normal 223 before noon.", "Quinta Normal 223"),  # a digit: no name
        ("Greetings card sent from Vodice.", "Vodice"),
        ("Owner Ana Lima of Krabbendijke reports the car stolen.", "Krabbendijke"),
    ],
)
def test_places_stay_places(text: str, word: str) -> None:
    assert not role(text, word)


def plain(word: str) -> bool:
    return word.lower() in {"called", "thanks", "the", "billing", "team", "customer", "hi"}


@pytest.mark.parametrize(
    ("text", "names"),
    [
        ("Cheers for the fix!\n-- Busisiwe", ["Busisiwe"]),
        ("Thabisile rang back at 8 pm.", ["Thabisile"]),
        ("IBAN on file, beneficiary Akwasi Amponsa, reference 244", ["Akwasi Amponsa"]),
        ("Called Chi twice, no answer.", []),  # no word around "Chi" says a person
        ("Thanks,\nThe Billing Team", []),  # dictionary words
        ("Hi NHS, please call.", []),  # an acronym
    ],
)
def test_names_found_by_where_they_stand(text: str, names: list[str]) -> None:
    assert [text[s:e] for s, e in find_role_names(text, [], plain)] == names


def test_a_word_something_found_is_left_to_that_finding() -> None:
    text = "-- Busisiwe"
    assert list(find_role_names(text, [(3, 11)], plain)) == []


def test_a_detector_span_does_not_run_across_lines_or_separators() -> None:
    text = "Bakar 12 | Recipient: Mubina Yunusov\nKsaverska 59"
    assert [text[s:e] for s, e in within_lines(text, 0, len(text))] == [
        "Bakar 12",
        "Recipient: Mubina Yunusov",
        "Ksaverska 59",
    ]
