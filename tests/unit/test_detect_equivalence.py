"""The scanner's speed-ups change no finding and no scrubbed byte.

The models' matrix products run on numpy's OpenBLAS instead of thinc's default BLIS
(``detect.engine``, ADR 0025). The reference is the same scanner on BLIS, loaded apart. Both
scan and scrub thousands of texts of the corpus generator's train split (the templates, names
and locales the detector was trained on, so its findings are many), and every span and every
output byte must be the same.
"""

from __future__ import annotations

import pandas as pd
import pytest

from veilflow.corpus import generate
from veilflow.detect.scanner import Scanner
from veilflow.detect.scrub import ScrubText, ScrubTextConfig
from veilflow.policy.detection import DetectionSettings
from veilflow.transform.base import ChunkContext, ColumnContext
from veilflow.transform.keys import LocalKeyProvider

KEYS = LocalKeyProvider(b"0123456789abcdef0123456789abcdef")
#: The demo policy's notes: tokens, surrogates and placeholders, so the second pass sees all.
WITH = {
    "EMAIL_ADDRESS": {"action": "tokenize", "keep_domain": True},
    "PHONE_NUMBER": {"action": "tokenize"},
    "PERSON": {"action": "surrogate", "entity": "PERSON"},
}
TEXTS = 2000


@pytest.fixture(scope="module")
def texts() -> list[str]:
    docs = generate("train", TEXTS, 20261205)
    # Whole texts, and each cut in two at a space: what a short prompt to the API looks like.
    halves = [d.text[: d.text.find(" ", len(d.text) // 2) + 1 or None] for d in docs[:500]]
    return [d.text for d in docs] + halves


@pytest.fixture(scope="module")
def scanners() -> tuple[Scanner, Scanner]:
    settings = DetectionSettings()
    return Scanner(settings, matmul="blis"), Scanner(settings)


def _scrub(scanner: Scanner, texts: list[str]) -> list[object]:
    op = ScrubText(
        ScrubTextConfig.model_validate({"with": WITH}), ColumnContext("customers", "note", KEYS)
    )
    op.use_scanner(scanner)
    out: list[object] = []
    for i in range(0, len(texts), 250):
        part = texts[i : i + 250]
        chunk = ChunkContext(frame=pd.DataFrame({"id": range(len(part))}), key_column="id")
        out.extend(op.apply(pd.Series(part, dtype=object), chunk).astype(object).tolist())
    return out


@pytest.mark.slow
def test_numpy_products_find_what_blis_finds(
    texts: list[str], scanners: tuple[Scanner, Scanner]
) -> None:
    reference, fast = scanners
    assert reference.detector is not None, "the equivalence needs the trained detector in force"
    for ref_nlp, fast_nlp in ((reference._nlp, fast._nlp), (reference._detector, fast._detector)):
        ref_layer = next(iter(ref_nlp.get_pipe("ner").model.walk()))
        fast_layer = next(iter(fast_nlp.get_pipe("ner").model.walk()))
        assert (ref_layer.ops.use_blis, fast_layer.ops.use_blis) == (True, False)
    want = [s for i in range(0, len(texts), 500) for s in reference.scan(texts[i : i + 500]).spans]
    got = [s for i in range(0, len(texts), 500) for s in fast.scan(texts[i : i + 500]).spans]
    assert sum(map(len, want)) > len(texts)  # many findings: the comparison means something
    differ = [i for i, (a, b) in enumerate(zip(want, got, strict=True)) if a != b]
    assert differ == []


@pytest.mark.slow
def test_numpy_products_scrub_what_blis_scrubs(
    texts: list[str], scanners: tuple[Scanner, Scanner]
) -> None:
    reference, fast = scanners
    want = _scrub(reference, texts)
    got = _scrub(fast, texts)
    assert sum(a != t for a, t in zip(want, texts, strict=True)) > len(texts) // 2
    differ = [i for i, (a, b) in enumerate(zip(want, got, strict=True)) if a != b]
    assert differ == []
