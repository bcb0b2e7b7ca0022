"""The proxy split: a stand-in for heldout made from the train split alone, to steer the
detector without looking at heldout (ADR 0014).

    .venv/bin/python benchmarks/detection_proxy.py --out /tmp/proxy [--texts 8000]
        [--epochs 10] [--width 64] [--rows 2000] [--model DIR] [--eval 3000] [--no-dev]

A fifth of each template family of the train split (templates 5, 10, 15, ... of each family
as they stood on 2026-12-05: ``PROXY_TEMPLATES``), four text locales and five name locales
are left out of a *development* model's training and are the only ones the proxy set is
made of; the proxy's names are filtered against the scanner's PERSON lists as heldout's are.
The development model is trained on the rest of the train split with the shipped
configuration (or ``--model`` scores one trained before), then scored with the rules on the
proxy set (3,000 texts, seed 7) and on a development set of the same training distribution
(``dev``). Prints per entity overlap P/R and leak rate, recall by kind of value, and writes
each text with its labels and predictions (synthetic text only) to ``--out`` for reading
errors. Templates added to the train split after ``PROXY_TEMPLATES`` was fixed go to
training only, so proxy figures of two development models stay comparable.

Not a product path: it swaps the corpus's split loader for the run's split objects.
Training here is in-process; run it under ``PYTHONHASHSEED=0`` for the same bytes each time.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path
from typing import Any

import pandas as pd

from veilflow.corpus import generate
from veilflow.corpus.splits import Split
from veilflow.detect.model import DetectorRef
from veilflow.detect.scanner import Scanner
from veilflow.detect.scrub import ScrubText, ScrubTextConfig
from veilflow.detector.evaluation import Score, leaks, rename, summarize
from veilflow.detector.training import TrainingConfig, train
from veilflow.policy.detection import DetectionSettings
from veilflow.transform.base import ChunkContext, ColumnContext
from veilflow.transform.keys import LocalKeyProvider

G = sys.modules["veilflow.corpus.generate"]
#: Text (place, phone) locales and name locales only the proxy set has.
PROXY_TEXT_LOCALES = ("da_DK", "hr_HR", "es_CL", "pl_PL")
PROXY_NAME_LOCALES = ("uz_UZ", "tw_GH", "en_TH", "vi_VN", "zu_ZA")
#: Templates per family when the proxy was fixed; every fifth of these is the proxy's.
PROXY_TEMPLATES = {"note": 28, "ticket": 21, "chat": 25, "address": 18, "clinical": 19}
PROXY_SEED = 7


def _held(template_id: str, family: str) -> bool:
    index = int(template_id.rsplit("/", 1)[1])
    return index % 5 == 0 and index <= PROXY_TEMPLATES.get(family, 0)


def part(real: Split, held: bool) -> Split:
    """The proxy's part of the train split (``held``) or the development model's."""
    return dataclasses.replace(
        real,
        templates=tuple(t for t in real.templates if _held(t.id, t.family) == held),
        locales=tuple(x for x in real.locales if (x in PROXY_TEXT_LOCALES) == held),
        name_locales=tuple(x for x in real.name_locales if (x in PROXY_NAME_LOCALES) == held),
        exclude_gazetteer_names=held,
        own_locale_names=0.0 if held else real.own_locale_names,
    )


def gen(split: Split, n: int, seed: int) -> list[Any]:
    """``generate("train", ...)`` over ``split`` in place of the train split."""
    load = G.load_split
    G.load_split = lambda _name: split
    try:
        return list(generate("train", n, seed))
    finally:
        G.load_split = load


def _pools_with_fallback(split: Split) -> dict[str, Any]:
    # A proxy name locale whose names the filter empties borrows another's pool.
    out: dict[str, Any] = _NAME_POOLS(split)
    if split.exclude_gazetteer_names:
        good = [p for p in out.values() if p.given and p.surnames]
        out = {
            k: (p if p.given and p.surnames else good[i % len(good)])
            for i, (k, p) in enumerate(out.items())
        }
    return out


_NAME_POOLS = G.name_pools
G.name_pools = _pools_with_fallback


def score(scanner: Scanner, docs: list[Any], out: Path, name: str) -> dict[str, Any]:
    texts = [d.text for d in docs]
    sc = Score()
    preds = []
    t0 = time.time()
    for i in range(0, len(texts), 512):
        batch = scanner.scan(texts[i : i + 512])
        for doc, spans in zip(docs[i : i + 512], batch.spans, strict=True):
            pred = rename([(s.start, s.end, s.entity) for s in spans])[0]
            preds.append(pred)
            sc.add(doc, pred)
    scan_s = time.time() - t0
    op = ScrubText(ScrubTextConfig(), ColumnContext("corpus", "text", LocalKeyProvider(bytes(32))))
    op.use_scanner(scanner)
    scrubbed: list[str] = []
    for i in range(0, len(texts), 1000):
        piece = texts[i : i + 1000]
        chunk = ChunkContext(frame=pd.DataFrame({"id": range(len(piece))}), key_column="id")
        scrubbed.extend(op.apply(pd.Series(piece, dtype=object), chunk).astype(object).tolist())
    ev = summarize(sc, leaks(docs, scrubbed), {})
    o = ev.overall
    print(
        f"== {name}: {len(docs)} texts, scan {scan_s:.1f}s | overlap F1 {o['overlap']['f1']} "
        f"leak {o['leak_rate']} (any word {o['leak_rate_any_word']})"
    )
    for ent, r in ev.per_entity.items():
        print(
            f"  {ent:22s} gold {r['gold']:5d} P {r['overlap']['precision']} "
            f"R {r['overlap']['recall']} leak {r['leak_rate']}"
        )
    kinds = sorted(sc.kinds.items())
    print(
        "  recall by kind: "
        + ", ".join(
            f"{k[1]} {v[1] / v[0]:.3f}"
            for k, v in kinds
            if k[0] in ("PERSON", "LOCATION", "DATE_TIME")
        )
    )
    with open(out / f"{name}.jsonl", "w", encoding="utf-8") as f:
        for d, p, s in zip(docs, preds, scrubbed, strict=True):
            row = {
                "text": d.text,
                "template": d.template,
                "labels": [[x.start, x.end, x.entity, x.kind] for x in d.labels],
                "pred": p,
                "out": s,
            }
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
    return ev.as_dict()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--texts", type=int, default=8000)
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--width", type=int, default=64)
    ap.add_argument("--rows", type=int, default=2000)
    ap.add_argument("--depth", type=int, default=2)
    ap.add_argument("--model", type=Path, default=None, help="score this model folder")
    ap.add_argument("--eval", type=int, default=3000)
    ap.add_argument("--no-dev", action="store_true", help="score the proxy set only")
    a = ap.parse_args()

    real = G.load_split("train")
    a.out.mkdir(parents=True, exist_ok=True)
    if a.model is None:
        cfg = TrainingConfig(
            texts=a.texts, epochs=a.epochs, width=a.width, embed_rows=a.rows, depth=a.depth
        )
        t0 = time.time()
        nlp, stats = train(cfg, gen(part(real, False), a.texts, cfg.seed))
        print(f"trained {a.texts} x {a.epochs} in {time.time() - t0:.0f} s, {stats.labels} labels")
        folder = a.out / "det"
        (folder / "model").mkdir(parents=True, exist_ok=True)
        nlp.to_disk(folder / "model")
        (folder / "report.json").write_text(json.dumps({"training": cfg.as_dict()}))
    else:
        folder = a.model
    entities = tuple(json.loads((folder / "report.json").read_text())["training"]["entities"])
    ref = DetectorRef(folder.name, folder, entities, "registered")
    scanner = Scanner(DetectionSettings(detector="none"), detector=ref)
    sets = {"proxy": part(real, True)} | ({} if a.no_dev else {"dev": part(real, False)})
    results = {
        name: score(scanner, gen(sp, a.eval, PROXY_SEED), a.out, name) for name, sp in sets.items()
    }
    (a.out / "results.json").write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
