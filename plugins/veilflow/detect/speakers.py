"""Names written in lower case where chats put them: a turn's speaker ("ioana: ok thanks"),
after a greeting or thanks ("hi ioana,", "thanks ioana!") and after a self-introduction
("it's ioana", "my name is ioana"); and, in any text, after a role, title or kin word
("user lenin rubilar reports ...", "my wife, cinthya labra."). Name lists cannot find these (whatever name it is, it
is spelt in lower case and may be in no list); the place in the chat can.

A word counts when it is no English word and no chat role ("agent", "bot", "support"), so
"thanks again", "hi there" and "user:" are not names; a name that is also an English word
("mark", "rose") is left to the model. Used by the prose scanner only, which has the word
list.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator

#: Words a chat names its speakers by that are no person's name.
ROLES = frozenset(
    """agent user customer client bot chatbot support helpdesk admin administrator system
    operator moderator mod host guest caller staff team rep representative assistant me you
    nurse doctor dr patient pt reception receptionist manager sales billing service desk
    note notes re fwd fw fyi ps cc bcc subject from to date time tel phone email mail web
    q a question answer reply response status update info warning error ok yes no
    """.split()
)
#: Chat words no dictionary holds ("i'm gonna", "thanks pls").
CHAT_WORDS = frozenset(
    """gonna wanna gotta kinda sorta lemme dunno gimme yeah yep yup nope nah okay ok k
    thx pls plz lol omg btw idk asap tbh imo u ur ya yall hmm hm sry np nvm brb ttyl
    cuz coz tho ive im youre theyre dont cant wont didnt isnt wasnt aint hiya heya
    """.split()
)
#: A chat turn: at a line start, after an optional "[12:04]" stamp, a word and ":" or ">".
_TURN = re.compile(r"(?m)^[ \t]*(?:\[[^\]\n]{1,30}\][ \t]*)?([a-z][a-z'-]{1,20})[ \t]*[:>]")
#: A word right after a greeting or thanks, then a pause or the end ("thanks ioana!").
_GREETED = re.compile(
    r"\b(?i:hi|hey|hello|dear|thanks|thank you|thx|ty|bye|cheers|morning|evening)[ ,]+"
    r"([a-z][a-z'-]{1,20})(?=[ \t]*(?:[,.!?:;)\n]|$))"
)
#: A word right after a self-introduction ("it's ioana again", "my name is ioana").
_INTRODUCED = re.compile(
    r"\b(?i:it's|it’s|its|this is|i'm|i’m|im|i am|my name is|name's|call me)[ ,]+"
    r"([a-z][a-z'-]{1,20}(?:[ ][a-z][a-z'-]{1,20})?)\b(?!['’-])"
)
#: Up to three lower-case words right after a role, title or kin word ("user lenin rubilar").
_ROLE_NAMED = re.compile(
    r"\b(?i:user|customer|client|patient|pt|caller|tenant|owner|member|subscriber|beneficiary"
    r"|holder|employee|applicant|resident|guest|contact|mr|mrs|ms|dr|wife|husband|son|daughter"
    r"|brother|sister|mother|father|mum|mom|dad|friend|partner|carer|colleague)\.?[ \t]*[,:]?"
    r"[ \t]+(?=(?P<words>[^\W\d_][^\W\d_'’-]{1,20}(?:[ ][^\W\d_][^\W\d_'’-]{1,20}){0,2}))"
)
_WORD = re.compile(r"[^\W\d_][^\W\d_'’-]*")
#: Right after a name: a verb people do, or a pause ("user lenin rubilar reports ...").
_NAME_ENDS = re.compile(
    r"[ \t]*(?:[,.!?:;)\n]|$)|[ \t]+(?:says|said|rang|called|wrote|asked|replied|reports"
    r"|reported|wants|is|was|has|had|needs|cannot|can't|logged|tried)\b"
)
#: Fewer chat turns than this and a leading "word:" is a label, not a speaker.
MIN_TURNS = 2


def find_lower_names(text: str, is_word: Callable[[str], bool]) -> Iterator[tuple[int, int]]:
    """Spans of lower-case names in chat positions; ``is_word`` tells English words."""
    turns = list(_TURN.finditer(text))

    def name(word: str) -> bool:
        return word not in ROLES and word not in CHAT_WORDS and not is_word(word)

    if len(turns) >= MIN_TURNS:
        for m in turns:
            if name(m.group(1)):
                yield m.start(1), m.end(1)
    for m in _GREETED.finditer(text):
        if name(m.group(1)):
            yield m.start(1), m.end(1)
    for m in _INTRODUCED.finditer(text):
        # "it's ioana again": a first word, and a second one if it is a name too (a surname).
        first, _, second = m.group(1).partition(" ")
        if name(first):
            end = m.end(1) if second and name(second) else m.start(1) + len(first)
            yield m.start(1), end
    for m in _ROLE_NAMED.finditer(text):
        yield from _role_named(text, m, name)


def _role_named(
    text: str, m: re.Match[str], name: Callable[[str], bool]
) -> Iterator[tuple[int, int]]:
    """The lower-case name after a role word: its first word and those after it that are no
    English words, up to a pause or a verb of people ("user lenin rubilar reports": "lenin"
    is a word, a name of history, "rubilar" is not); a name of one word must be no English
    word ("patient denies pain" holds none)."""
    words = [w.span() for w in _WORD.finditer(text, m.start("words"), m.end("words"))]
    if not text[m.start("words") : m.end("words")].islower():
        return
    first = text[words[0][0] : words[0][1]]
    if first in ROLES or first in CHAT_WORDS:
        return
    for k in range(len(words), 0, -1):
        # Every word after the first is no English word ("kofi and ama" is two names).
        if all(name(text[s:e]) for s, e in words[1:k]) and _NAME_ENDS.match(text, words[k - 1][1]):
            if k > 1 or name(first):
                yield words[0][0], words[k - 1][1]
            return
