"""The rescan's rule for "this finding is source data": whole words of the column's own
source value, or the whole value of a column of the row."""

from __future__ import annotations

import pytest

from veilflow.validate.rescan import occurs_as_words, survived


@pytest.mark.parametrize(
    ("text", "source", "expected"),
    [
        ("Lee", "Call Ann Lee today", True),
        ("Lee", "Call Ashlee today", False),
        ("Lee", "Leeds office", False),
        ("Ann Lee", "(Ann Lee)", True),
        ("+1 755 375 2212", "call +1 755 375 2212.", True),
        ("755 375", "call +1 755 3750", False),
        ("jo@x.org", "mail jo@x.org, thanks", True),
        ("jo@x.org", "mail ajo@x.org", False),
        ("Lee", "user_Lee_2", True),  # underscore separates words here
        ("", "anything", False),
        ("Lee", "", False),
    ],
)
def test_occurs_as_whole_words(text: str, source: str, expected: bool) -> None:
    assert occurs_as_words(text, source) is expected


def test_other_columns_count_only_as_whole_values() -> None:
    row = frozenset({"lucas davidson", "south shawn", "lucas.davidson7095@icloud.com"})
    assert survived("Lucas  Davidson", "", row)  # case and spacing folded
    assert survived("lucas.davidson7095@icloud.com", "no note", row)
    assert not survived("Shawn", "", row)
    assert not survived("Lucas", "Spoke with April Lucasson", row)
    assert survived("Lucas", "Spoke with Lucas", row)
