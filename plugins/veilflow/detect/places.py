"""LOCATION rules that complement the statistical NER model: street addresses (US, UK,
Canadian and Australian shapes, with units and postcodes), "City, ST" pairs, labelled
places and city names from the GeoNames gazetteer, each with its own score.

The capitalised-word shapes (``UPPER``, ``CAPITAL``, ``WORD``) are defined here and shared
with the PERSON rules of ``veilflow.detect.rules``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from functools import lru_cache

from veilflow.detect.gazetteers import (
    AMBIGUOUS_GIVEN,
    NOT_NAME,
    STREET_ABBREVIATIONS,
    cities,
    gazetteers,
)
from veilflow.detect.text_pattern import trie

#: Capital letters (Latin, with accents) a name or a place begins with, and a capitalised word.
UPPER = "".join(c for c in map(chr, range(0x41, 0x250)) if c.isupper())
CAPITAL = f"[{UPPER}]"
WORD = CAPITAL + r"[\w'’-]*"

US_STATES_ABBR = (
    "AL|AK|AZ|AR|CA|CO|CT|DE|DC|FL|GA|HI|ID|IL|IN|IA|KS|KY|LA|ME|MD|MA|MI|MN|MS|"
    "MO|MT|NE|NV|NH|NJ|NM|NY|NC|ND|OH|OK|OR|PA|RI|SC|SD|TN|TX|UT|VT|VA|WA|WV|WI|"
    "WY|PR|GU|VI|AS|MP|AA|AE|AP|MH|PW|FM"
)
_PLACE_PREFIX = r"(?:North|South|East|West|New|Lake|Port|Fort|Mount|Saint|St\.|San|Santa|Los|Las|El|Bad|Sankt|Villa|Nowy|Nowa|Stary)"
_PLACE_SUFFIX = (
    r"(?:town|ton|land|ville|berg|burgh|borough|bury|view|port|mouth|stad|furt|"
    r"chester|fort|haven|side|shire|field|ford|wood|dale|heim|hausen|dorf|burg|"
    r"stadt|ingen|feld|bach|au|ow|ice|ino|ano|ona|polis|ham|by|holm|bourg|ville)"
)
_PREP = r"(?:in|from|to|near|at|of|visiting|via|around|outside|based in|lives in|moved to)"


@lru_cache(maxsize=1)
def _place_patterns() -> tuple[tuple[re.Pattern[str], float, int], ...]:
    g = gazetteers()
    suffixes = "|".join(re.escape(s) for s in g.street_suffixes)
    abbreviations = "|".join(sorted(STREET_ABBREVIATIONS, key=len, reverse=True))
    gaz = trie(sorted(g.countries | g.states))
    street_words = (
        r"(?:rue|avenue|boulevard|bd|chemin|place|impasse|allée|route|quai|via|viale|"
        r"piazza|corso|largo|vicolo|calle|avenida|plaza|paseo|camino|carrer|rua|"
        r"travessa|ulica|ul\.|aleja|al\.|Rue|Avenue|Boulevard|Chemin|Place|Impasse|"
        r"Allée|Route|Quai|Via|Viale|Piazza|Corso|Largo|Vicolo|Calle|Avenida|Plaza|"
        r"Paseo|Camino|Carrer|Rua|Travessa|Ulica|Aleja|Rambla|Ronda|Travesía|Glorieta|Pasaje|"
        r"Callejón|Contrada|Viela|Morro|Alameda|Praça|Praca|Estrada|Beco|Ladeira|"
        r"Quadra|Vereda|Setor|Strada|Piazzale|Borgo|Canale|Vía|Plac|pl\.|Osiedle|os\.)"
    )
    compound = (
        r"(?:straße|strasse|str\.|weg|gasse|platz|allee|ring|damm|ufer|steig|pfad|steeg|baan|"
        r"dijk|markt|pad|"
        r"straat|laan|plein|gracht|kade|singel|dreef|hof|vej|gade|gatan|vägen|veien|"
        r"gata|tie|katu)"
    )
    return (
        # 119 Avery Spring Apt. 721 / 55 Main Street, Suite 4 / 22 Main St.
        (
            re.compile(
                rf"\b\d{{1,6}}[A-Za-z]?,?[ ]+(?:(?:{WORD}[ ]+){{0,4}}(?:{suffixes})"
                rf"|(?:{WORD}[ ]+){{1,4}}(?:{abbreviations}))\b\.?"
                r"(?:,?[ ]+(?:Apt\.|Apartment|Suite|Ste\.|Unit|#)[ ]*\d+[A-Za-z]?)?"
            ),
            0.85,
            0,
        ),
        # 12, rue de la Paix / 5 Calle Mayor
        (
            re.compile(
                rf"\b\d{{1,4}}[a-z]?,?[ ]+{street_words}[ ]+(?:[\w'’.-]+[ ]?){{1,5}}?"
                r"(?=[,\n\x00]|$| \d)"
            ),
            0.8,
            0,
        ),
        # Via Roma 12 / Calle de Alcalá 5 / ul. Długa 5
        (
            re.compile(
                rf"\b{street_words}[ ]+(?:[\w'’.-]+,?[ ]){{1,5}}?\d{{1,4}}[a-zA-Z]?\b"
                r"(?:[ ]?/[ ]?\d+)?"
            ),
            0.8,
            0,
        ),
        # Hauptstraße 5 / Kerkstraat 12
        (re.compile(rf"\b{CAPITAL}[\w'’-]*{compound}[ ]+\d{{1,4}}[a-zA-Z]?\b"), 0.8, 0),
        # PO Box 1234 / P.O. Box 77
        (re.compile(r"\b(?i:p\.?[ ]?o\.?[ ]?box|post[ ]office[ ]box)[ ]+\d{1,6}\b"), 0.85, 0),
        # Springfield, IL  (city before a US state code)
        (
            re.compile(
                rf"\b({WORD}(?:[ ]{WORD}){{0,2}}),[ ]+(?:{US_STATES_ABBR})(?=[ ]\d{{5}}|\b)"
            ),
            0.85,
            1,
        ),
        (re.compile(rf"(?<=, )(?:{US_STATES_ABBR})(?=[ ]\d{{5}})"), 0.85, 0),
        # …, 10115 Berlin   (city after a postcode)
        (
            re.compile(
                rf"(?<=, )(?:\d{{4,5}}|\d{{4}} ?[A-Z]{{2}}|\d{{2}}-\d{{3}}|\d{{4}}-\d{{3}})[ ]+"
                rf"({WORD}(?:[ ](?:{WORD}|am|an|der|de|sur|en|im)){{0,3}})"
            ),
            0.8,
            1,
        ),
        # "<name>, Porkkalankatu 2, 20702 Kärkölä": whatever holds a house number between an
        # address lead and a postcode + city is the street address.
        (
            re.compile(
                r"(?:, |: |\bis |\bat |\bto )([^,\n\x00:;<>()]{2,60}?"
                r"(?:, \d[^,\n\x00:;<>()]{0,30}?)?)"
                r"(?=, (?:\d{3} \d{2}|\d{4,6}|\d{4} ?[A-Z]{2}|\d{2}-\d{3}|\d{5}-\d{3}|\d{8}|"
                rf"[A-Z]{{1,2}}\d[A-Z\d]? \d[A-Z]{{2}}) {CAPITAL})"
            ),
            0.8,
            1,
        ),
        # Countries and US states by name.
        (re.compile(rf"(?<!\w)(?:{gaz})\b"), 0.85, 0),
        # North Lisa, Port Jennifer, Lake Brandonton
        (re.compile(rf"\b{_PLACE_PREFIX}[ ]{WORD}"), 0.65, 0),
        # Lindsayshire, Nashfort — a place-name shape after a preposition
        (re.compile(rf"\b{_PREP}[ ]({CAPITAL}[\w'’-]*{_PLACE_SUFFIX})\b"), 0.8, 1),
        # "in Potsdam": a capitalised word after a place preposition
        (
            re.compile(
                rf"\b(?:in|from|near|visiting|outside|based in|lives in|moved to|relocated to)"
                rf"[ ]({WORD}(?:[ ]{WORD})?)(?=[ ]*[,.;!?\n\x00]|$)"
            ),
            0.55,
            1,
        ),
    )


# --- whole postal addresses ---------------------------------------------------------------

_UNIT = (
    r"(?:(?:Apt|Apartment|Suite|Ste|Unit|Flat|Fl|Floor|Room|Rm|Bldg|Building|Lot|Space|Dept|"
    r"Studio|Level|Shop)"
    r"\.?[ ]?(?:No\.?[ ]?)?\#?|\#[ ]?)[A-Za-z0-9]{1,5}(?:[-/][A-Za-z0-9]{1,4})?\b"
)
#: A flat or suite before the house number: "Flat 2, 14 Baker Street", "Unit 4/17 George St",
#: "8/421 Jasmine Point".
_UNIT_BEFORE = re.compile(rf"(?:{_UNIT}(?:,?[ ]+|/)|(?<![\w/])\d{{1,4}}[A-Za-z]?/)$")
_CA_AU_REGIONS = "AB|BC|MB|NB|NL|NS|NT|NU|ON|PE|QC|SK|YT|NSW|VIC|QLD|TAS|ACT|SA"
_POSTCODE = (
    r"\d{5}(?:-\d{4})?|[A-Z]{1,2}\d[A-Z\d]?[ ]?\d[A-Z]{2}|[A-Z]\d[A-Z][ ]?\d[A-Z]\d"
    r"|\d{4}(?:[ ]?[A-Z]{2})?"
)
_POSTCODE_FIRST = (
    r"\d{4}[ ]?[A-Z]{2}(?![\w])|\d{3}[ ]\d{2}|\d{5}-\d{3}|\d{4}-\d{3}|\d{2}-\d{3}|\d{4,6}"
)
_ADDRESS_SEP = r"(?:,[ ]*|[ ]*\n[ ]*)"


@lru_cache(maxsize=1)
def _address_tail() -> re.Pattern[str]:
    """What may follow a street address: a unit, then a city (before or after its postcode),
    a state or region, a postcode, a country; each part optional, in this order."""
    g = gazetteers()
    states = "|".join(re.escape(n) for n in sorted(g.states, key=len, reverse=True))
    countries = "|".join(
        re.escape(n) for n in sorted(g.countries, key=len, reverse=True) if "(" not in n
    )
    word = rf"{CAPITAL}(?:[^\W\d_]|['’-])*(?!\w)"
    city = rf"{word}(?:[ -](?:{word}|sur|am|an|der|de|la|le|del|upon|on)){{0,3}}"
    return re.compile(
        rf"(?P<unit>(?:{_ADDRESS_SEP}|[ ]+){_UNIT})?"
        rf"(?:(?P<sep>{_ADDRESS_SEP}|[ ]+)"
        rf"(?:(?P<pc_first>{_POSTCODE_FIRST}),?[ ]+(?P<city_after>{city})"
        rf"|(?P<city>{city})"
        rf"(?:(?:,[ ]*|[ ]+)(?P<state>{US_STATES_ABBR}|{_CA_AU_REGIONS}|{states})\b)?"
        rf"(?:(?:,[ ]*|[ ]+)(?P<postcode>{_POSTCODE})(?![\w-]))?))?"
        rf"(?:,[ ]*(?P<country>{countries})\b)?"
    )


@lru_cache(maxsize=1)
def _postcode_tail() -> re.Pattern[str]:
    """What may follow "City, ST": its postcode, then a country."""
    g = gazetteers()
    countries = "|".join(
        re.escape(n) for n in sorted(g.countries, key=len, reverse=True) if "(" not in n
    )
    return re.compile(
        rf"(?:,?[ ]+(?P<postcode>{_POSTCODE})(?![\w-]))?(?:,[ ]*(?P<country>{countries})\b)?"
    )


_PLACE_END = re.compile(r"[ ]*(?:[,.;!?\n\x00)]|$)")


def address_span(text: str, start: int, end: int, street: bool = True) -> tuple[int, int]:
    """The whole postal address around the street address ``text[start:end]`` (or, with
    ``street=False``, around a "City, ST"): a flat or unit before it; a unit, city, state or
    region, postcode and country after it, where they stand together. A city counts when a
    state or postcode follows it, or when it ends the clause after a comma or line break
    ("..., Lindsayshire." but not "... Street Monday")."""
    if street:
        lead = _UNIT_BEFORE.search(text, max(0, start - 30), start)
        if lead is not None:
            start = lead.start()
    m = (_address_tail() if street else _postcode_tail()).match(text, end)
    if m is None:  # pragma: no cover - every part is optional
        return start, end
    part = m.groupdict()
    new_end = m.end("unit") if part.get("unit") else end
    city = part.get("city_after") or part.get("city")
    if city:
        if part["pc_first"] or part["state"] or part["postcode"]:
            new_end = max(m.end(g) for g in ("city_after", "city", "state", "postcode") if part[g])
        elif (
            part["sep"].strip()
            and city.split(" ", 1)[0] not in NOT_NAME
            and _PLACE_END.match(text, m.end("city"))
        ):
            new_end = m.end("city")
    elif not street and part["postcode"]:
        new_end = m.end("postcode")
    if part["country"] and not text[new_end : m.start("country")].strip(" ,"):
        new_end = m.end("country")
    return start, new_end


_CITY_AFTER = re.compile(rf",[ ]+({WORD}(?:[ ]{WORD}){{0,2}})(?=[ ]*(?:[,.;!?\n\x00]|$))")
_LABELLED_PLACE = re.compile(
    rf"\b(?i:location|city|town|village|place of birth|birthplace|hometown|country|"
    rf"destination|origin)[ ]*[:=]?[ ]+({WORD}(?:[ ]{WORD}){{0,2}})"
)


#: A field of a record: what lies between separators (``;``, ``|``, tab, comma, line, text).
_FIELD = re.compile(
    r"(?:(?<=[,;|\t\n\x00])|^)[ ]*([^,;|\t\n\x00]{2,60}?)[ ]*"
    r"(?=[,;|\t\n\x00]|$)"
)
#: Words after which a known city name is a place.
_CITY_PREP = re.compile(
    r"\b(?:(in|near|visiting|outside|around|based in|lives in|living in|moved to|relocated to|"
    r"flew to|flying to|travelling to|traveling to|trip to)|(from|to|at|via))[ ]+(?="
    + CAPITAL
    + ")",
    re.IGNORECASE,
)
_PLACE_FIELD = re.compile(
    rf"(?:{_PLACE_PREFIX}[ ]{WORD}|{CAPITAL}[\w'’-]*{_PLACE_SUFFIX}"
    rf"|{WORD}[ ]{CAPITAL}[\w'’-]*{_PLACE_SUFFIX})$"
)
_CAPS = re.compile(rf"(?<![\w@.'’-]){WORD}(?:[ ]{WORD})*")


def _name_like_word(word: str) -> bool:
    g = gazetteers()
    return word in g.given or word in g.surnames or word in AMBIGUOUS_GIVEN


def find_cities(text: str) -> Iterator[tuple[int, int, float]]:
    """LOCATION candidates from the GeoNames city list: a whole field of a record ("Jane
    Doe;jane@x.org;Lyon"), a city after "in"/"to"/..., and the biggest cities anywhere.
    A city that is also a personal name ("Sydney", "Jackson") counts only where nothing
    suggests a person: in a ``;``/``|``/tab field, or after "in", "near", "moved to"."""
    c = cities()
    if not c.names:
        return
    for m in _FIELD.finditer(text):
        field = m.group(1)
        s, e = m.span(1)
        comma = text[e : e + 1] == "," or text[m.start() - 1 : m.start()] == ","
        if comma and _name_like_word(field):
            continue
        if field in c.names:
            yield s, e, 0.8
        elif (s > 0 or e < len(text)) and _PLACE_FIELD.match(field):
            yield s, e, 0.7  # "Lake Jennifer", "Pearsonborough": a place by its shape
    for m in _CITY_PREP.finditer(text):
        toks = _CAPS.match(text, m.end())
        if toks is None:
            continue
        words = toks.group().split(" ")[: c.words]
        for n in range(len(words), 0, -1):
            name = " ".join(words[:n])
            if name in c.names:
                if m.group(2) and (_name_like_word(name) or name not in c.primary):
                    break  # "from Jackson", "to Sydney": as likely a person
                yield m.end(), m.end() + len(name), 0.8
                break
    major, firsts = c.major, _first_words(c.major)
    for run in _CAPS.finditer(text):
        words = run.group().split(" ")
        pos = run.start()
        i = 0
        while i < len(words):
            step = 1
            if words[i] in firsts:
                for n in range(min(3, len(words) - i), 0, -1):
                    name = " ".join(words[i : i + n])
                    if name in major:
                        yield pos, pos + len(name), 0.6
                        step = n
                        break
            pos += sum(len(w) + 1 for w in words[i : i + step])
            i += step


@lru_cache(maxsize=2)
def _first_words(names: frozenset[str]) -> frozenset[str]:
    return frozenset(n.split(" ", 1)[0] for n in names)


#: Place patterns that find a street address (house number and street, PO box) and, last,
#: the "<name>, Porkkalankatu 2, 20702 Kärkölä" shape: each is widened to the whole address.
_STREETS = frozenset({0, 1, 2, 3, 4, 8})
#: "Springfield, IL": widened to the postcode (and country) that follow it.
_CITY_STATE = 5


def find_places(text: str) -> Iterator[tuple[int, int, float]]:
    """LOCATION candidates from address shapes and place names."""
    yield from find_cities(text)
    g = gazetteers()
    for m in _LABELLED_PLACE.finditer(text):
        if m.group(1).split(" ", 1)[0] not in NOT_NAME:
            yield m.start(1), m.end(1), 0.8
    for i, (rx, score, group) in enumerate(_place_patterns()):
        for m in rx.finditer(text):
            if i in _STREETS or i == _CITY_STATE:
                s, e = m.start(group), m.end(group)
                wide = address_span(text, s, m.end() if i == _CITY_STATE else e, i in _STREETS)
                if wide != (s, e):
                    yield wide[0], wide[1], score
            if i == 0:  # a street address: the capitalised words after its comma are the city
                city = _CITY_AFTER.match(text, m.end() - (text[m.end() - 1] == "."))
                if city and city.group(1).split(" ", 1)[0] not in NOT_NAME:
                    yield city.start(1), city.end(1), 0.8
            s, e = m.start(group), m.end(group)
            if text[e - 1] == "." and not re.search(r"\b\w{1,4}\.$", text[s:e]):
                e -= 1  # a sentence's full stop, not an abbreviation's
            word = text[s:e]
            if group and rx.pattern.startswith("(?:, |: ") and not any(c.isdigit() for c in word):
                continue
            first = word.split(" ", 1)[0]
            if group and (first in NOT_NAME or word in g.given):
                continue
            yield s, e, score
