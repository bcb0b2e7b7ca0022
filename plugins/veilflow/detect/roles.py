"""Where a span stands in the sentence says whether it is a person or a place.

The trained detector reads an unfamiliar name it has not seen as easily as a place
("registered to Hoàng Dương", "-- Ernestina"): both are capitalised words in no list. The
words around the span often settle it: a person is what a thing is registered or handed to,
who is thanked, greeted, introduced or signs off, whose role comes before the name ("wife",
"Pt", "nurse") and who speaks a chat turn or "says", "rang" or "wrote". ``person_role``
says whether such a word stands next to ``text[start:end]``; the scanner then takes the
detector's place there for a name. A place the place rules know stays a place (their finding
outranks the detector's), and nothing here makes a place of a name.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator

#: Words for a person's role or kin: "Pt", "wife", "nurse", "witness", "reporter".
_ROLE = (
    r"mr|mrs|ms|miss|mx|dr|prof|pt|patient|customer|client|user|caller|nurse|doctor"
    r"|agent|wife|husband|son|daughter|brother|sister|mother|father|mum|mom|dad|aunt|uncle"
    r"|niece|nephew|cousin|grandma|grandpa|grandmother|grandfather|grandson|granddaughter"
    r"|friend|colleague|partner|spouse|fianc[ée]e?|girlfriend|boyfriend|parent|guardian"
    r"|carer|caregiver|tenant|landlord|landlady|lodger|neighbou?r|owner|resident|guest"
    r"|visitor|attendee|witness|applicant|employee|driver|reporter|requester|assignee"
    r"|subscriber|beneficiary|holder|keeper|sender|recipient|prescriber|manager|supervisor"
    r"|physician|surgeon|therapist|physio|dentist|pharmacist|midwife|paramedic|consultant"
    r"|registrar|secretary|assistant|technician|engineer|officer|teacher|student|name"
)
#: Right before a person: a verb a thing passes to a person by, a greeting, thanks, an
#: introduction, a sign-off, "with", a role or kinship word, a title (all end at the span).
_BEFORE = re.compile(
    r"(?i:"
    r"\b(?:registered|assigned|issued|handed(?:\s+over)?|belongs?|belonging|married|engaged"
    r"|introduced|spoke|spoken|talked|talking|speaking)\s+to"
    r"|\b(?:name\s+is|name's|call\s+me|i\s+am|i'm|i’m|this\s+is|it's|it’s|signed\s+by"
    r"|signed|escorted\s+by|attn|c/o|cc|from:|to:|on\s+behalf\s+of|in\s+the\s+name\s+of"
    r"|with|congratulations\s+to|congrats\s+to)"
    r"|\b(?:dear|hi|hello|hey|thanks|thank\s+you|cheers|regards|sincerely|yours|best|bye"
    r"|greetings)"
    # a verb of talking to someone: its object is a person ("ping Tsung-Han", "ask Ana")
    r"|\b(?:ask|asked|tell|told|call|phone|ring|e-?mail|e-?mailed|text|texted|ping|pinged"
    r"|message|messaged|remind|reminded|notify|notified|inform|informed|invite|invited"
    r"|contact|contacted|thank|thanked)"
    rf"|\b(?:{_ROLE})\.?"
    # a role, then a surname and a comma: the given name of "Reporter: Wan, Tzu-En"
    rf"|\b(?:{_ROLE})\.?[ \t]*:[ \t]*[^\W\d_][\w'’-]*,"
    r")[ \t]*[,:!]?\s*$"
)
#: A line that holds only a sign-off mark before the span ("-- Ernestina").
_SIGN_OFF = re.compile(r"(?:^|\n)[ \t]*(?:--?|—|–|~)[ \t]*$")
#: Right after a person: a verb people do, or any verb in the past tense: the span is who
#: did it ("Khristo walked 30 m", "Ana got", unless a preposition stands before the span). A
#: regular one must go on: "Repro attached." is a thing, passive.
_AFTER = re.compile(
    r"\s+(?:says|said|rang|phoned|called|wrote|writes|asked|asks|replied|reports|reported"
    r"|joined|signed|agrees|agreed|prefers|wants|is\s+waiting|[a-z]{3,}ed(?=[ \t]+\w)"
    r"|got|left|went|came|took|gave|told|sent|brought|met|saw|found|paid|made|kept|drove"
    r"|flew|ran|sat|stood|spoke|knew|thought|heard|bought|lost|fell|felt|forgot|woke|ate"
    r"|wore|began|rode)\b"
)
#: Right after a person: a date of birth or an age in apposition ("Ana Lima, DOB 1 Mar 2006",
#: "Ana Lima (93-year-old)", "Ana Lima, aged 40"); only a person has one.
_BORN_AFTER = re.compile(
    r"[ \t]*[,(][ \t]*(?i:dob\b|d\.o\.b\.|date\s+of\s+birth|born\b|aged?\b"
    r"|\d{1,3}[ -]?(?:yo\b|y/o|y\.o\.|years?[ -]old|-year-old))"
)
#: Right after a person: their role in apposition ("(Dimitar, son)", "Zhuliana (niece)",
#: "Lev, district nurse for ..."), then the apposition's end.
_ROLE_AFTER = re.compile(
    rf"[ \t]*[,(][ \t]*(?:[a-z]+[ \t]+)?(?i:{_ROLE})(?:[),.;]|[ \t]+(?:for|of|to|at)\b|$)"
)
#: Right before a place: a preposition ("of Koper reports" is the owner's town reporting nothing).
_PLACE_BEFORE = re.compile(r"\b(?i:of|in|from|at|near|to|into|via|around|outside)[ \t]+$")
#: Right before a place and never a person: "in", "near", "into", "outside" ("grew up in
#: Patricia Ville", "in the Eric Ville office"); "in Ana's car" is the car.
_ONLY_PLACE_BEFORE = re.compile(r"\b(?i:in|near|into|outside)(?:[ \t]+the)?[ \t]+$")
_POSSESSIVE_AFTER = re.compile(r"['’]s\b")
#: A chat turn's speaker: the span opens its line (after an optional "[12:04]" stamp) and a
#: colon or ">" follows it.
_TURN_OPENS = re.compile(r"(?:^|\n)[ \t]*(?:\[[^\]\n]{1,30}\][ \t]*)?$")
_TURN_MARK = re.compile(r"[ \t]*[:>][ \t]")
#: Any chat turn in the text; a text of fewer is no chat ("Oslo: rain all day").
_TURNS = re.compile(r"(?m)^[ \t]*(?:\[[^\]\n]{1,30}\][ \t]*)?([^\W\d_][\w'’ .-]{0,30})[:>][ \t]")
MIN_TURNS = 2
#: The fields of an e-mail's header (RFC 5322) and of a forwarded or quoted one: "Date:" and
#: "Subject:" lines are no chat turns, and "Date" is no speaker.
_HEADER_FIELD = re.compile(r"(?i:from|to|cc|bcc|date|sent|subject|re|fwd?|reply-to)")
#: One to four words of letters (hyphens and apostrophes inside), no digit: a name's shape.
_NAME_SHAPED = re.compile(r"[^\W\d_]+(?:['’-][^\W\d_]+)*(?:[ ][^\W\d_]+(?:['’-][^\W\d_]+)*){0,3}")
#: How far back the words before a span are looked for.
_REACH = 40


def place_role(text: str, start: int, end: int) -> bool:
    """Whether ``text[start:end]`` is shaped like a name and stands where only a place does:
    right after "in", "near", "into" or "outside" ("she's in Béni Saf"), not a possessive."""
    return (
        name_shaped(text, start, end)
        and _ONLY_PLACE_BEFORE.search(text, max(0, start - _REACH), start) is not None
        and _POSSESSIVE_AFTER.match(text, end) is None
    )


def entity_by_role(text: str, start: int, end: int, entity: str) -> str:
    """A learned place where the words around it say a person is a name ("registered to
    Hoàng Dương", "Hi Naira"), a learned name where only a place stands is a place ("grew up
    in Patricia Ville"); any other entity stays."""
    if entity == "LOCATION" and person_role(text, start, end):
        return "PERSON"
    if entity == "PERSON" and place_role(text, start, end):
        return "LOCATION"
    return entity


def name_shaped(text: str, start: int, end: int) -> bool:
    """Whether ``text[start:end]`` is one to four words of letters, no digit."""
    return _NAME_SHAPED.fullmatch(text, start, end) is not None


def person_role(text: str, start: int, end: int) -> bool:
    """Whether ``text[start:end]`` is shaped like a name and the words around it say it is a
    person (module docstring)."""
    if not name_shaped(text, start, end):
        return False
    before = text[max(0, start - _REACH) : start]
    if _BEFORE.search(before) or _SIGN_OFF.search(before):
        return True
    after = _AFTER.match(text, end) or _ROLE_AFTER.match(text, end) or _BORN_AFTER.match(text, end)
    if after and not _PLACE_BEFORE.search(before):
        return True  # "Thabisile rang back", not "Owner Ana Lima of Koper reports"
    return (
        _TURN_MARK.match(text, end) is not None
        and _TURN_OPENS.search(before) is not None
        and _HEADER_FIELD.fullmatch(text, start, end) is None
        and _written_as_a_name(text[start:end])
        and chat_turns(text) >= MIN_TURNS
    )


def field_label(text: str, start: int, end: int) -> bool:
    """Whether ``text[start:end]`` opens its line before a colon and is written as no name
    is: a form's field ("Date of birth: ...", "Place of birth: ..."), neither a place nor a
    person whatever a model makes of it."""
    return (
        _TURN_MARK.match(text, end) is not None
        and _TURN_OPENS.search(text, max(0, start - _REACH), start) is not None
        and not _written_as_a_name(text[start:end])
    )


def _written_as_a_name(span: str) -> bool:
    """Every word capitalised ("Omina", "Ana Lima") or none (a chat typed in lower case): a
    form's field ("Date of birth:", "Next of kin:") is neither, and is no speaker."""
    words = span.split()
    return all(w[0].isupper() for w in words) or span.islower()


def chat_turns(text: str) -> int:
    """How many lines of ``text`` open with a speaker and a colon or ">" (header fields of an
    e-mail are not counted)."""
    return sum(_HEADER_FIELD.fullmatch(m.group(1).strip()) is None for m in _TURNS.finditer(text))


#: A capitalised word (letters, inner hyphens and apostrophes) not glued to a code or address.
_CAP_WORD = re.compile(r"(?<![\w@.'’/-])[^\W\d_]+(?:['’-][^\W\d_]+)*(?![\w@'’/-])")
#: Words of one name at most.
MAX_WORDS = 3


def _runs(text: str) -> Iterator[list[tuple[int, int]]]:
    """Runs of capitalised words one space apart ("Akwasi Amponsa"), at most ``MAX_WORDS``."""
    run: list[tuple[int, int]] = []
    for m in _CAP_WORD.finditer(text):
        if not m.group()[0].isupper():
            if run:
                yield run
            run = []
            continue
        if run and (
            m.start() - run[-1][1] != 1 or text[run[-1][1]] != " " or len(run) == MAX_WORDS
        ):
            yield run
            run = []
        run.append(m.span())
    if run:
        yield run


def find_role_names(
    text: str, covered: list[tuple[int, int]], plain: Callable[[str], bool]
) -> Iterator[tuple[int, int]]:
    """Capitalised words that nothing found, that are no dictionary word (``plain``: "Thanks",
    "Billing") and that stand where a person does (``person_role``): "-- Busisiwe", "Percy
    rang back", "beneficiary Akwasi Amponsa". Dictionary words leading a run are cut off
    ("Called Chi" is looked at as "Chi")."""
    for run in _runs(text):
        while run and plain(text[run[0][0] : run[0][1]]):
            run = run[1:]
        if not run or any(plain(text[s:e]) for s, e in run):
            continue
        start, end = run[0][0], run[-1][1]
        word = text[start:end]
        if word.isupper() and len(word) <= 5:
            continue  # an acronym
        if any(s < end and start < e for s, e in covered):
            continue
        if person_role(text, start, end):
            yield start, end
