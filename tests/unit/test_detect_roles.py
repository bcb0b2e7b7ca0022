"""The words around a span that make the trained detector's place a person
(``veilflow.detect.roles``), and the places they leave alone."""

from __future__ import annotations

import pytest

from veilflow.detect.roles import person_role


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
    ],
)
def test_places_stay_places(text: str, word: str) -> None:
    assert not role(text, word)
