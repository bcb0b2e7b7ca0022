"""URLs, image file names and IPv6 addresses in free text; and look-alikes that are not."""

from __future__ import annotations

import ipaddress

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
    ("text", "url"),
    [
        ("See https://portal.example.org/pt/4471?x=1.", "https://portal.example.org/pt/4471?x=1"),
        ("(details: http://jones.net/about)", "http://jones.net/about"),
        ("blog at www.smith-family.com, mostly recipes", "www.smith-family.com"),
        ("Upload to ftp://files.example.com/u/jdoe/", "ftp://files.example.com/u/jdoe/"),
        ("her page patient-portal.org/records/4471 was updated", "patient-portal.org/records/4471"),
        ("Website: marysmithphotography.com", "marysmithphotography.com"),
        ("<a href='https://x.example.com/p?id=7'>", "https://x.example.com/p?id=7"),
    ],
)
def test_urls(patterns_only: Scanner, text: str, url: str) -> None:
    assert found(patterns_only, text, "URL") == [url]


@pytest.mark.parametrize(
    "text",
    [
        "Use the app e.g. on iOS, i.e. not the U.S. site.",
        "Node.js and config.yaml and file.txt and report.pdf",
        "Write to jane.doe@example.com for the forms.",
        "Version 3.2.1 released; ratio 1.5; Dr.Jones signed.",
        "http:// is a scheme; www. alone is nothing",
    ],
)
def test_not_urls(patterns_only: Scanner, text: str) -> None:
    assert found(patterns_only, text, "URL") == []


def test_a_bare_domain_needs_a_path_or_a_context_word(patterns_only: Scanner) -> None:
    assert found(patterns_only, "Booked via hotels.com last year.", "URL") == []
    assert found(patterns_only, "Her blog is hotels4jane.com now.", "URL") == ["hotels4jane.com"]


@pytest.mark.parametrize(
    ("text", "name"),
    [
        ("Photo: jane_doe_face.jpg attached", "jane_doe_face.jpg"),
        ("IMG_2041.HEIC uploaded from the ward iPad", "IMG_2041.HEIC"),
        ("see DSC01234.JPG", "DSC01234.JPG"),
        ("Wound picture wound_left.png added", "wound_left.png"),
        ("CT series 0042.dcm reviewed", "0042.dcm"),
        ("scan saved as C:\\scans\\mrsmith\\front.tif", "C:\\scans\\mrsmith\\front.tif"),
        ("uploaded /uploads/2021/patients/p4471.png", "/uploads/2021/patients/p4471.png"),
        ("JohnSmith.jpeg in the shared drive", "JohnSmith.jpeg"),
    ],
)
def test_photo_files(patterns_only: Scanner, text: str, name: str) -> None:
    assert found(patterns_only, text, "PHOTO_FILE") == [name]


@pytest.mark.parametrize(
    "text",
    [
        "See logo.png and diagram.png in the wiki.",
        "Export chart.svg and report.pdf, then notes.docx.",
        "The icon.gif is broken.",
    ],
)
def test_not_photo_files(patterns_only: Scanner, text: str) -> None:
    assert found(patterns_only, text, "PHOTO_FILE") == []


@pytest.mark.parametrize(
    "address",
    [
        "2001:db8::8a2e:370:7334",
        "2001:0db8:85a3:0000:0000:8a2e:0370:7334",
        "fe80::1ff:fe23:4567:890a%eth0",
        "::ffff:192.0.2.128",
        "64:ff9b::192.0.2.33",
        "FE80::0202:B3FF:FE1E:8329",
    ],
)
def test_ipv6(patterns_only: Scanner, address: str) -> None:
    for text in (f"login from {address} failed", f"[{address}]:443", f"IP={address}."):
        assert found(patterns_only, text, "IP_ADDRESS") == [address], text


@pytest.mark.parametrize(
    "text", ["std::vector and a::b", "time 10:30:00 and 12:34", "ratio 1:2:3", "C++ :: ok"]
)
def test_not_ipv6(patterns_only: Scanner, text: str) -> None:
    assert found(patterns_only, text, "IP_ADDRESS") == []


@given(st.ip_addresses(v=6))
def test_any_ipv6_address_is_found(address: ipaddress.IPv6Address) -> None:
    text = f"client {address} connected"
    if address.compressed in ("::", "::1") or sum(c.isalnum() for c in address.compressed) < 3:
        return  # the unspecified and loopback addresses say nothing about a person
    got = found(_SCANNER, text, "IP_ADDRESS")
    assert got == [address.compressed] or got == [str(address)], (address, got)


_SCANNER = Scanner(use_ner=False)
