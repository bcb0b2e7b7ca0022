"""URLs and image file names: what points at a person's page, record or picture.

A URL is found from its ``://`` or ``www.``; a bare domain from its top-level domain
(``mychart.example.org``), and then it counts only with a path (``portal.org/records/4471``)
or after a word that makes it an address ("website", "visit", "portal"): "booked on
Booking.com" is not a personal identifier. An image file (``.jpg``, ``.png``, ``.heic``,
``.tif``, ``.dcm`` ...) is a PHOTO_FILE when its name holds a digit or a known given name or
surname (``IMG_2041.HEIC``, ``jane_doe_face.jpg``), is a DICOM image, or stands after a photo
word ("photo", "picture", "image", "headshot", "scan", "attached"); ``logo.png`` alone is
not one.

Each regex starts at the ``://``, ``www.`` or the ``.`` of the extension, and the validator
reads the rest of the name backwards, which keeps the scan of a batch cheap.
"""

from __future__ import annotations

import re
import string

from veilflow.detect.gazetteers import gazetteers
from veilflow.detect.text_pattern import TextPattern, before, words

_TRAIL = ".,;:!?'\"”’"
_BRACKETS = {")": "(", "]": "[", "}": "{"}
_URL_BODY = re.compile(r"[^\s<>\"'`\x00|\\^{}]+")
_SCHEME = re.compile(r"(?i:https?|ftps?|sftp|file)$")


def _walk_back(text: str, end: int, chars: frozenset[str], limit: int) -> int:
    """Where the run of ``chars`` (and letters) that ends at ``end`` starts, at most
    ``limit`` characters back."""
    start, stop = end, max(0, end - limit)
    while start > stop and (text[start - 1] in chars or text[start - 1].isalpha()):
        start -= 1
    return start


def _url_end(text: str, start: int, end: int) -> int:
    """``end`` moved back over the sentence punctuation and unbalanced closing brackets that
    follow a URL."""
    url = text[start:end]
    while url and (
        url[-1] in _TRAIL
        or (url[-1] in _BRACKETS and url.count(url[-1]) > url.count(_BRACKETS[url[-1]]))
    ):
        url = url[:-1]
    return start + len(url)


def _url(m: re.Match[str], text: str) -> tuple[int, int, float] | None:
    """``https://...``, ``ftp://...``, ``www....``: the whole URL, without the punctuation
    that follows it."""
    start = m.start()
    if m.group() == "://":
        scheme = before(_SCHEME, text, start, 6)
        if scheme is None or (scheme.start() and text[scheme.start() - 1].isalnum()):
            return None
        start = scheme.start()
    elif start and (text[start - 1].isalnum() or text[start - 1] in "@.+-"):
        return None
    body = _URL_BODY.match(text, m.end())
    if body is None:
        return None
    end = _url_end(text, start, body.end())
    if end - m.end() < 3:
        return None
    return start, end, 0.9


_DOMAIN_CHARS = frozenset(string.ascii_letters + string.digits + "-.")
_DOMAIN = re.compile(r"(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+")


def _domain(m: re.Match[str], text: str) -> tuple[int, int, float] | None:
    """A bare domain, found from its top-level domain: with a path it is an address (0.7);
    alone (0.45) it needs a context word to pass the threshold."""
    dot = m.start()
    start = _walk_back(text, dot, _DOMAIN_CHARS, 253)
    while start < dot and not text[start].isalnum():
        start += 1
    if start == dot or (start and text[start - 1] in "@:/+"):
        return None  # an e-mail's domain, a URL's host: found whole by their own patterns
    if not _DOMAIN.fullmatch(text, start, dot + 1):
        return None
    end = _url_end(text, start, m.end())
    return start, end, 0.7 if "/" in text[dot:end] else 0.45


#: Words of a file name: split at separators and case changes ("JaneDoe_face-2.jpg").
_NAME_WORDS = re.compile(r"[A-Z]?[a-z]+|[A-Z]+(?![a-z])")
_FILE_CHARS = frozenset(string.ascii_letters + string.digits + "_-.~()/\\:")
_FILE_START = re.compile(r"(?:[A-Za-z]:\\|~?/|\.{1,2}/)?[\w~-]")
_PHOTO_WORDS = re.compile(
    r"\b(?:photo|photograph|picture|pic|image|img|selfie|headshot|portrait|mugshot|"
    r"snapshot|face|facial|id photo|passport photo|attached|attachment|upload(?:ed)?|"
    r"scan(?:ned)?)s?\b"
    r"[^\x00]*$",
    re.IGNORECASE,
)


def _photo(m: re.Match[str], text: str) -> tuple[int, int, float] | None:
    """An image file name, read back from its extension, that names or numbers a person."""
    start = _walk_back(text, m.start(), _FILE_CHARS, 160)
    while start < m.start() and text[start] in ":().-":
        start += 1  # "Photo:IMG_1.jpg", "(IMG_1.jpg)"
    if start == m.start() or not _FILE_START.match(text, start, m.start()):
        return None
    name = text[start : m.start()]
    stem = re.split(r"[\\/]", name)[-1]
    if m.group("ext").lower() in ("dcm", "dicom") or any(ch.isdigit() for ch in stem):
        return start, m.end(), 0.85
    if before(_PHOTO_WORDS, text, start, 60) is not None:
        return start, m.end(), 0.8
    g = gazetteers()
    for word in _NAME_WORDS.findall(name):
        w = word.capitalize()
        if len(w) > 2 and (w in g.given or w in g.surnames):
            return start, m.end(), 0.8
    return None


LOCATOR_PATTERNS: tuple[TextPattern, ...] = (
    TextPattern("url", "URL", re.compile(r"://|www\.|WWW\."), 0.9, _url),
    TextPattern(
        "domain",
        "URL",
        re.compile(
            r"\.(?i:com|org|net|edu|gov|mil|info|biz|io|co|us|uk|ca|au|de|fr|nl|eu|health|"
            r"care|clinic|app|dev|me|tv|online|site|website|blog)"
            r"(?::\d{2,5})?(?:/[^\s<>\"'`\x00|\\^{}]*)?(?![\w@-]|\.\w)"
        ),
        0.45,
        _domain,
        context=words(
            "website",
            "web site",
            "site",
            "url",
            "link",
            "homepage",
            "home page",
            "page",
            "blog",
            "profile",
            "visit",
            "visited",
            "portal",
            "online",
            "domain",
            "web",
        ),
        boost=0.3,
    ),
    TextPattern(
        "photo_file",
        "PHOTO_FILE",
        re.compile(
            r"\.(?P<ext>(?i:jpe?g|jfif|png|heic|heif|tiff?|dcm|dicom|bmp|gif|webp|avif|raw|"
            r"cr2|nef|dng))(?![\w-])"
        ),
        0.8,
        _photo,
    ),
)
