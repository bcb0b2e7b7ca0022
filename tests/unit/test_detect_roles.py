"""The words around a span that make the trained detector's place a person
(``veilflow.detect.roles``), the places they leave alone, the names nothing else found that
those words find, and detector spans cut at line breaks."""

from __future__ import annotations

import pytest

from veilflow.detect.findings import keep_findings
from veilflow.detect.learned_spans import (
    learned_span,
    small_words,
    typed_in_lower_case,
    within_lines,
)
from veilflow.detect.roles import (
    chat_turns,
    field_label,
    find_role_names,
    person_role,
    place_role,
)
from veilflow.detect.scanner import Scanner, scanner_for
from veilflow.detect.spans import Span
from veilflow.detect.vocabulary import Vocabulary
from veilflow.policy.detection import DetectionSettings


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
        ("Spent the morning with Dagrun at the depot.", "Dagrun"),
        ("Oyelaran collected the keys on Monday.", "Oyelaran"),  # a past tense that goes on
        ("Ilkay got the parcel yesterday.", "Ilkay"),
        ("Family (Dobrin, son) to visit at noon.", "Dobrin"),  # a role in apposition
        ("Home once Miren (niece) confirms support.", "Miren"),
        ("Dressing changed by Lev, district nurse for Ward 4.", "Lev"),
        ("Please see Imre Vass, DOB 3 May 1950, in clinic.", "Imre Vass"),  # a date of birth
        ("Imre Vass (93-year-old) was admitted.", "Imre Vass"),
        ("Reporter: Szabo, Imre. Affected host 10.0.0.1", "Imre"),  # "Surname, Given"
        ("can someone ping Gorka about the release", "Gorka"),  # a verb of talking to someone
        ("Congratulations to Oona Virtanen on the award!", "Oona Virtanen"),
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
        ("Ambulance from Tarnby arrived at 9 pm.", "Tarnby"),  # a preposition before it
        ("Repro attached.", "Repro"),  # a passive that ends the sentence
        ("Moved to Tarnby (client site) in May.", "Tarnby"),  # no apposition's end
        ("Welcome to Tarnby, enjoy your stay.", "Tarnby"),
        ("Applicant: Ana Lima\nDate of birth: 1 May 1990", "Date of birth"),  # a form's field
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


@pytest.mark.parametrize(
    ("text", "word"),
    [
        ("From: kim@example.org\nDate: 3 May 2024\n\nHi all", "Date"),
        ("To: Ana Lima\nSubject: Oslo trip\n\nsee you there", "Subject"),
    ],
)
def test_an_email_header_field_is_no_chat_speaker(text: str, word: str) -> None:
    assert not role(text, word)
    assert chat_turns(text) == 0


def test_a_chat_with_a_header_line_still_counts_its_turns() -> None:
    text = "Date: 3 May\n[12:01] Omina: hi there\n[12:02] Agent: hello"
    assert chat_turns(text) == 2
    assert role(text, "Omina")


@pytest.mark.parametrize(
    ("text", "word", "lower"),
    [
        ("ana: im in berlin till friday", "berlin", True),
        ("user: my iban is DE89370400440532013000, im in berlin", "berlin", True),
        ("Medication list confirmed: amlodipine 0 puffs.", "amlodipine", False),
        ("Gjorche: nope. tried twice\nAna: ok", "nope", False),
        ("Hi Ana,\nsee you in berlin", "berlin", True),  # its own line is typed in lower case
    ],
)
def test_a_line_typed_in_lower_case(text: str, word: str, lower: bool) -> None:
    assert typed_in_lower_case(text, text.index(word)) is lower


VOCABULARY = Vocabulary(
    frozenset({"trip", "data", "last", "weekend", "met", "rue", "grew", "pending"}),
    frozenset(),
    frozenset(),
)


def keep(text: str, *found: tuple[str, str, str, float]) -> list[tuple[str, str]]:
    cands = []
    for word, entity, source, score in found:
        start = text.index(word)
        cands.append(Span(start, start + len(word), entity, score, source))
    spans = keep_findings(text, cands, lambda _e: 0.5, set(), VOCABULARY)
    return [(text[s.start : s.end], s.entity) for s in spans]


def test_what_a_model_span_leaves_beside_a_rule_is_no_place_when_it_reads_as_none() -> None:
    text = "Spoke to Ana Lima's carer about the Oslo trip, then left."
    assert keep(
        text,
        ("Ana Lima", "PERSON", "names", 0.9),
        ("Ana Lima's", "LOCATION", "model", 0.85),
        ("Oslo", "PERSON", "roles", 0.9),
        ("Oslo trip, ", "LOCATION", "model", 0.85),
    ) == [("Ana Lima", "PERSON"), ("Oslo", "PERSON")]


def test_a_capitalised_rest_of_a_model_place_stays() -> None:
    text = "Met them at the Zell am See office."
    assert keep(
        text, ("Zell", "PERSON", "ner", 0.9), ("Zell am See", "LOCATION", "model", 0.85)
    ) == [("Zell", "PERSON"), ("am See", "LOCATION")]


@pytest.fixture(scope="module")
def scanner() -> Scanner:
    return scanner_for(DetectionSettings())  # the shipped detector


@pytest.mark.parametrize(
    ("text", "word"),
    [
        # a lower-case word on a line that writes names with capitals is no name or place
        (
            "Bug report from Vasilka Dimitrieva: export fails when the file has more than 38 rows.",
            "more than 38 rows",
        ),
        ("Gjorche: nope. tried 036 31 81 05 twice\nAna: ok", "nope"),
        # a header field is no speaker
        (
            "From: Rozana Dokova <rozana@example.org>\nDate: Nov 24, 2023 8:30 PM\n\nSee you.",
            "Date",
        ),
    ],
)
def test_no_name_or_place_with_the_detector_on(scanner: Scanner, text: str, word: str) -> None:
    assert word not in [text[s.start : s.end] for s in scanner.scan_text(text)]


def test_a_form_field_is_a_label() -> None:
    text = "Applicant: Ana Lima\nPlace of birth: Tarnby\nDate of birth: 1 May 1990"
    start = text.index("Place of birth")
    assert field_label(text, start, start + len("Place of birth"))
    assert not field_label(text, 0, len("Applicant"))  # written as a name could be


def test_a_detector_span_does_not_run_across_a_sentence_end() -> None:
    text = "Seen with physio. Khristo walked in St. Kilda."
    start = text.index("physio")
    assert [text[s:e] for s, e in within_lines(text, start, len(text))] == [
        "physio.",
        "Khristo walked in St. Kilda.",
    ]


def test_a_distance_is_no_place() -> None:
    assert learned_span("walked 32 m", 0, 11, "LOCATION", VOCABULARY) is None
    assert learned_span("Ul. Lipowa 32", 0, 13, "LOCATION", VOCABULARY) == (0, 13)


def test_a_model_place_after_a_name_and_and_is_a_name() -> None:
    text = "Congrats to the winners Ana Lima and Koray Ulu, well done."
    assert keep(
        text, ("Ana Lima", "PERSON", "names", 0.9), ("Koray Ulu", "LOCATION", "model", 0.85)
    ) == [("Ana Lima", "PERSON"), ("Koray Ulu", "PERSON")]


@pytest.mark.parametrize(
    ("text", "word", "small"),
    [
        ("Medication list confirmed: amlodipine 5 mg.", "amlodipine 5 mg", True),
        ("Our new office: 379, rue Ana Lima.", "379, rue", False),  # a house number
        ("Visit 12 rue de la paix", "rue de la paix", True),
        ("ana: im in berlin", "berlin", False),  # typed in lower case
        ("Welcome to Oslo", "Oslo", False),
    ],
)
def test_small_words_on_a_line_with_capitals(text: str, word: str, small: bool) -> None:
    start = text.index(word)
    assert small_words(text, start, start + len(word)) is small


@pytest.mark.parametrize(
    ("text", "word", "place"),
    [
        ("Daphne still lives in Winterswijk Kotten, near the school.", "Winterswijk Kotten", True),
        ("She grew up in Patricia Ville.", "Patricia Ville", True),
        ("Servers in the Eric Ville data centre are down.", "Eric Ville", True),
        ("Left the keys in Ana's car.", "Ana", False),  # the car is in it, not Ana
        ("Spoke to Ana Lima today.", "Ana Lima", False),  # "to" takes people as well
        ("Stuck near Unit 4 today.", "Unit 4", False),  # a digit: no name's shape
    ],
)
def test_a_place_by_the_word_before_it(text: str, word: str, place: bool) -> None:
    start = text.index(word)
    assert place_role(text, start, start + len(word)) is place


@pytest.mark.parametrize(
    ("text", "entity", "kept"),
    [
        ("Enitsa Stoikov grew", "PERSON", "Enitsa Stoikov"),
        ("Transfer to Lindseymouth pending", "LOCATION", "Transfer to Lindseymouth"),
        ("Frankfurt am Main", "LOCATION", "Frankfurt am Main"),
        ("im in berlin pending", "LOCATION", "im in berlin pending"),  # typed in lower case
    ],
)
def test_a_model_span_ends_in_no_small_english_word(text: str, entity: str, kept: str) -> None:
    span = learned_span(text, 0, len(text), entity, VOCABULARY)
    assert span is not None
    assert text[span[0] : span[1]] == kept


def test_irregular_forms_are_english_words() -> None:
    """A text opening "Seen jointly with ..." opens with no name: the lemma index holds "see", the
    exception tables hold "seen", and no ending taken off finds one from the other."""
    from veilflow.detect.engine import english_words
    from veilflow.detect.gazetteers import gazetteers

    g = gazetteers()
    vocabulary = Vocabulary(english_words(DetectionSettings().model), g.given, g.surnames)
    for word in ("Seen", "Went", "Taken", "Children", "Written"):
        assert vocabulary.plain_word(word), word
    assert not vocabulary.plain_word("Kudriashova")
