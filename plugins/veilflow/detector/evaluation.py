"""Scoring detection against the corpus's labels: precision, recall and F1 per entity (exact
and overlap matching), recall per kind of value, and the leak rate after ``scrub_text``.

Used by the training DAG to decide whether a candidate detector may be registered and by
``benchmarks/detection_generalization.py``. Counts only: no text leaves this module.
"""

from __future__ import annotations

import difflib
import re
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from veilflow.corpus import ENTITIES, Doc

Pred = list[tuple[int, int, str]]

#: Scanner entity → the corpus entity it is scored as, where the two name the same thing: a
#: postcode is part of a LOCATION address, a US bank number an ACCOUNT_NUMBER (and
#: Presidio's licence and MAC types, for the benchmark's baseline).
ALIASES = {
    "ZIP_CODE": "LOCATION",
    "US_BANK_NUMBER": "ACCOUNT_NUMBER",
    "US_DRIVER_LICENSE": "LICENSE_NUMBER",
    "MEDICAL_LICENSE": "LICENSE_NUMBER",
    "MAC_ADDRESS": "DEVICE_ID",
}


def rename(pred: Pred) -> tuple[Pred, Counter[str]]:
    """Predictions in the corpus's entity names, and a count of those left unscored."""
    kept: Pred = []
    unscored: Counter[str] = Counter()
    for s, e, ent in pred:
        ent = ALIASES.get(ent, ent)
        if ent in ENTITIES:
            kept.append((s, e, ent))
        else:
            unscored[ent] += 1
    return kept, unscored


def _prf(gold: int, found: int, pred: int, correct: int) -> tuple[float, float, float]:
    r = found / gold if gold else float("nan")
    p = correct / pred if pred else float("nan")
    f = 2 * p * r / (p + r) if p + r else 0.0
    return p, r, f


class Score:
    """Per entity: gold labels, found exactly / by overlap; predictions, correct exactly /
    by overlap. Per (entity, kind): gold labels and found by overlap."""

    def __init__(self) -> None:
        self.t: dict[str, list[int]] = {e: [0, 0, 0, 0, 0, 0] for e in ENTITIES}
        self.kinds: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0])

    def add(self, doc: Doc, pred: Pred) -> None:
        for lab in doc.labels:
            row = self.t[lab.entity]
            same = [p for p in pred if p[2] == lab.entity]
            exact = any(p[0] == lab.start and p[1] == lab.end for p in same)
            over = any(p[0] < lab.end and lab.start < p[1] for p in same)
            row[0] += 1
            row[1] += exact
            row[2] += over
            k = self.kinds[(lab.entity, lab.kind)]
            k[0] += 1
            k[1] += over
        for s, e, ent in pred:
            row = self.t[ent]
            gold = [lab for lab in doc.labels if lab.entity == ent]
            row[3] += 1
            row[4] += any(g.start == s and g.end == e for g in gold)
            row[5] += any(g.start < e and s < g.end for g in gold)

    def prf(self, ent: str, exact: bool) -> tuple[float, float, float]:
        gold, fx, fo, pred, cx, co = self.t[ent]
        found, correct = (fx, cx) if exact else (fo, co)
        return _prf(gold, found, pred, correct)

    def micro(self, exact: bool) -> tuple[float, float, float]:
        tot = [sum(r[i] for r in self.t.values()) for i in range(6)]
        found, correct = (tot[1], tot[4]) if exact else (tot[2], tot[5])
        return _prf(tot[0], found, tot[3], correct)


_WORD = re.compile(r"[^\W_]{2,}")


def _kept(blocks: list[tuple[int, int, int]], out: str, s: int, e: int) -> bool:
    """Whether ``text[s:e]`` stands unchanged in the output, in place, as whole words."""
    for a, b, size in blocks:
        if a <= s and e <= a + size:
            j, k = b + (s - a), b + (e - a)
            return (j == 0 or not out[j - 1].isalnum()) and (k == len(out) or not out[k].isalnum())
    return False


def leaks(docs: Sequence[Doc], outputs: Sequence[str]) -> dict[str, list[int]]:
    """Per entity: [labels, whole text left, some word of it left]. The output is aligned
    with the input (difflib's matching blocks); a label's text, or one of its words of two
    or more letters or digits, is left when it stands unchanged in that alignment with no
    letter or digit on either side. So a name repeated elsewhere in the text, or a word
    another identifier shares ("com"), is not counted for this label unless this one stayed."""
    out: dict[str, list[int]] = {e: [0, 0, 0] for e in ENTITIES}
    for doc, text in zip(docs, outputs, strict=True):
        matcher = difflib.SequenceMatcher(None, doc.text, text, autojunk=False)
        blocks = [(m.a, m.b, m.size) for m in matcher.get_matching_blocks() if m.size]
        for lab in doc.labels:
            row = out[lab.entity]
            row[0] += 1
            row[1] += _kept(blocks, text, lab.start, lab.end)
            row[2] += any(
                _kept(blocks, text, lab.start + w.start(), lab.start + w.end())
                for w in _WORD.finditer(lab.text)
            )
    return out


def _r(x: float) -> float | None:
    return None if x != x else round(x, 4)


@dataclass(frozen=True)
class Evaluation:
    """A detector's figures on one labeled set: per entity and overall."""

    data: dict[str, Any]
    per_entity: dict[str, dict[str, Any]]
    overall: dict[str, Any]

    @property
    def f1(self) -> float:
        return float(self.overall["overlap"]["f1"])

    @property
    def leak_rate(self) -> float:
        return float(self.overall["leak_rate"])

    def as_dict(self) -> dict[str, Any]:
        return {"data": self.data, "per_entity": self.per_entity, "overall": self.overall}


def summarize(score: Score, leak: dict[str, list[int]], data: dict[str, Any]) -> Evaluation:
    """The JSON-ready figures of a scored run."""
    per: dict[str, dict[str, Any]] = {}
    for ent in ENTITIES:
        gold = score.t[ent][0]
        if not gold:
            continue
        xp, xr, xf = score.prf(ent, exact=True)
        op, orr, of = score.prf(ent, exact=False)
        total, whole, word = leak[ent]
        per[ent] = {
            "gold": gold,
            "predicted": score.t[ent][3],
            "exact": {"precision": _r(xp), "recall": _r(xr), "f1": _r(xf)},
            "overlap": {"precision": _r(op), "recall": _r(orr), "f1": _r(of)},
            "leak_rate": _r(whole / total) if total else None,
            "leak_rate_any_word": _r(word / total) if total else None,
        }
    xp, xr, xf = score.micro(exact=True)
    op, orr, of = score.micro(exact=False)
    tot = [sum(x[i] for x in leak.values()) for i in range(3)]
    overall = {
        "gold": tot[0],
        "exact": {"precision": _r(xp), "recall": _r(xr), "f1": _r(xf)},
        "overlap": {"precision": _r(op), "recall": _r(orr), "f1": _r(of)},
        "leak_rate": _r(tot[1] / tot[0]) if tot[0] else None,
        "leak_rate_any_word": _r(tot[2] / tot[0]) if tot[0] else None,
    }
    return Evaluation(data, per, overall)
