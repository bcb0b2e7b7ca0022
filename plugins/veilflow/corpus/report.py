"""What a split is made of, stated from its data files and name pools: locales of names and
places, sources, template families, and how many of its name words the scanner's PERSON
lists know (``gazetteer_overlap``)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from veilflow.corpus.generate import Doc
from veilflow.corpus.sources import fold, known_name_words, name_words, source_version
from veilflow.corpus.splits import load_split, name_pools


@dataclass(frozen=True)
class Overlap:
    """Name words checked against the scanner's PERSON lists: how many, and which are known
    there exactly (as written) or once case and accents are set aside."""

    words: int
    exact: tuple[str, ...]
    folded: tuple[str, ...]


def gazetteer_overlap(words: Iterable[str]) -> Overlap:
    from veilflow.detect.gazetteers import AMBIGUOUS_GIVEN, gazetteers

    g = gazetteers()
    exact_known = g.given | g.surnames | AMBIGUOUS_GIVEN
    folded_known = known_name_words()
    unique = sorted(set(words))
    return Overlap(
        len(unique),
        tuple(w for w in unique if w in exact_known),
        tuple(w for w in unique if fold(w) in folded_known),
    )


def person_words(docs: Iterable[Doc]) -> list[str]:
    """Every word of every PERSON label in ``docs``."""
    return [
        w
        for doc in docs
        for lab in doc.labels
        if lab.entity == "PERSON"
        for w in name_words(lab.text)
    ]


@dataclass(frozen=True)
class SplitReport:
    split: str
    description: str
    name_source: str
    place_source: str
    name_locales: tuple[str, ...]
    place_locales: tuple[str, ...]
    templates_file: str
    families: dict[str, int]
    given_names: int
    surnames: int
    dropped_known: int
    dropped_shape: int
    overlap: Overlap

    def lines(self) -> list[str]:
        fams = ", ".join(f"{f} ({n})" for f, n in self.families.items())
        ov = self.overlap
        return [
            f"split {self.split}: {self.description}",
            f"  names:     {self.name_source}, locales {', '.join(self.name_locales)}",
            f"  places:    {self.place_source}, locales {', '.join(self.place_locales)}",
            f"  templates: {self.templates_file}: {sum(self.families.values())} in {fams}",
            f"  name pool: {self.given_names} given names, {self.surnames} surnames"
            + (
                f" ({self.dropped_known} dropped: a word of them is in the scanner's PERSON lists;"
                f" {self.dropped_shape} not shaped like a name)"
            ),
            f"  overlap with the scanner's PERSON lists: {len(ov.exact)} of {ov.words} name "
            f"words exactly, {len(ov.folded)} ignoring case and accents",
        ]


def split_report(split: str) -> SplitReport:
    s = load_split(split)
    pools = name_pools(s)
    words = [w for p in pools.values() for n in p.given + p.surnames for w in name_words(n)]
    families = {f: len(s.by_family(f)) for f in s.families}
    return SplitReport(
        split=s.name,
        description=s.description,
        name_source=source_version(s.name_source),
        place_source=source_version(s.place_source),
        name_locales=s.all_name_locales,
        place_locales=s.locales,
        templates_file=s.templates_file,
        families=families,
        given_names=sum(len(p.given) for p in pools.values()),
        surnames=sum(len(p.surnames) for p in pools.values()),
        dropped_known=sum(p.dropped_known for p in pools.values()),
        dropped_shape=sum(p.dropped_shape for p in pools.values()),
        overlap=gazetteer_overlap(words),
    )
