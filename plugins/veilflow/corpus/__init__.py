"""A labeled synthetic corpus for measuring detection: notes, support tickets, chats, postal
addresses and clinical notes in which every planted identifier is a labeled character span.
Two splits, ``train`` and ``heldout``, share no template, no locale and no source of names
(``data/splits.yaml``); see ``report`` for what each one uses."""

from veilflow.corpus.generate import DEFAULT_SEED, Doc, Label, generate
from veilflow.corpus.report import SplitReport, split_report
from veilflow.corpus.splits import ENTITIES, SLOTS, SPLITS

__all__ = [
    "DEFAULT_SEED",
    "ENTITIES",
    "SLOTS",
    "SPLITS",
    "Doc",
    "Label",
    "SplitReport",
    "generate",
    "split_report",
]
