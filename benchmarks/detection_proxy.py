"""The proxy split: a stand-in for heldout made from the train split alone, to steer the
detector without looking at heldout (ADR 0014).

    .venv/bin/python benchmarks/detection_proxy.py --out /tmp/proxy [--texts 8000]
        [--epochs 10] [--width 64] [--rows 2000] [--model DIR] [--eval 3000] [--no-dev]
    .venv/bin/python benchmarks/detection_proxy.py --v2 --out /tmp/proxy2 [--model DIR]

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

``--v2`` scores the second proxy set instead (``benchmarks/data/proxy_v2.yaml``, 3,000
texts, seed 7), made of nothing the train split or heldout holds: templates written in other
voices (clinical letters, customer-written tickets, group chats, e-mails with headers,
forms), places and phone numbers of Faker locales neither split uses, and names of other
unused Faker locales in Latin letters, filtered against the scanner's lists; and its
``fresh`` set of templates, written after the scanner changes that were steered on the
others, as a check on text they did not see. Since no part of it was trained on, it scores
the shipped detector (or ``--model``) with no development model; the ``dev`` set is then the
train split's distribution as the shipped detector saw it (seed 7, so not its training
texts). Cyrillic, Greek and Armenian names are written in Latin letters by text-unidecode
(installed with python-slugify, an Airflow dependency).

Not a product path: it swaps the corpus's split loader for the run's split objects.
Training here is in-process; run it under ``PYTHONHASHSEED=0`` for the same bytes each time.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import json
import sys
import time
from pathlib import Path
from typing import Any

import pandas as pd
import yaml
from text_unidecode import unidecode

from veilflow.corpus import generate
from veilflow.corpus.sources import FakerPlaces, NamePool, _pool
from veilflow.corpus.splits import Split, _parse
from veilflow.corpus.values import Draw
from veilflow.detect.model import DetectorRef, shipped
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
        # the proxy set stays the texts it was (single names are a training option)
        single_names=0.0 if held else real.single_names,
    )


def gen(split: Split, n: int, seed: int) -> list[Any]:
    """``generate("train", ...)`` over ``split`` in place of the train split."""
    load = G.load_split
    G.load_split = lambda _name: split
    try:
        return list(generate("train", n, seed))
    finally:
        G.load_split = load


V2_FILE = Path(__file__).parent / "data" / "proxy_v2.yaml"
#: Top-level domains for the second proxy's text locales (URLs are not among its slots).
V2_TLDS = {"fr_DZ": "dz", "en_PH": "ph", "en_MS": "my", "en_BD": "bd", "en_AU": "com.au"}


def _v2_spec() -> dict[str, Any]:
    spec: dict[str, Any] = yaml.safe_load(V2_FILE.read_text(encoding="utf-8"))
    return spec


def v2_split(real: Split, fresh: bool = False) -> Split:
    """The second proxy: its own templates (``fresh``: those written after the changes
    steered on the others), text locales and name locales, over the train split's other
    settings (IBAN countries, shared date formats without train's extras)."""
    spec = _v2_spec()
    key, prefix = ("fresh_templates", "proxy2-fresh") if fresh else ("templates", "proxy2")
    templates = tuple(
        _parse(prefix, family, i, text, str(V2_FILE))
        for family, texts in spec[key].items()
        for i, text in enumerate(texts)
    )
    locales = tuple(spec["text_locales"])
    return dataclasses.replace(
        real,
        templates=templates,
        templates_file=str(V2_FILE),
        locales=locales,
        name_locales=tuple(spec["name_locales"]),
        tlds={loc: V2_TLDS.get(loc, "ca") for loc in locales},
        exclude_gazetteer_names=True,
        own_locale_names=0.0,
        extra_formats={},
        lowercase_chats=0.0,
        single_names=0.0,
    )


def _latin(name: str) -> str:
    # Cyrillic soft and hard signs come out as apostrophes; names here are written without.
    return unidecode(name).replace("'", "").replace("`", "").strip()


def _faker_lists(locale: str) -> tuple[list[str], list[str]]:
    provider = importlib.import_module(f"faker.providers.person.{locale}").Provider
    if locale == "ja_JP":  # (kanji, kana, romaji) pairs
        return (
            [p[2] for p in provider.first_name_pairs],
            [p[2] for p in provider.last_name_pairs],
        )
    lists: tuple[list[str], list[str]] = ([], [])
    for attr in sorted(dir(provider)):
        value = getattr(provider, attr)
        if not isinstance(value, (tuple, list, dict)):
            continue
        names = [str(n) for n in (value.keys() if isinstance(value, dict) else value)]
        if locale == "zh_TW" or locale == "zh_CN":
            if "romanized" not in attr:
                continue
            names = [n.title() for n in names]
        if "first_names" in attr or "first_romanized_names" in attr:
            lists[0].extend(names)
        elif "last_names" in attr or "last_romanized_names" in attr:
            lists[1].extend(names)
    return lists


def v2_pools(split: Split) -> dict[str, NamePool]:
    """Names of the second proxy's name locales in Latin letters, filtered as heldout's; a
    text locale draws from them too (its own Faker names are train's en_US lists)."""
    pools = {}
    for loc in split.name_locales:
        given, surnames = _faker_lists(loc)
        pools[loc] = _pool(loc, map(_latin, given), map(_latin, surnames), True)
    named = [p for p in pools.values() if p.given and p.surnames]
    for i, loc in enumerate(x for x in split.locales if x not in pools):
        pools[loc] = named[i % len(named)]
    return pools


class _V2Places(FakerPlaces):
    """Faker's places of a locale; phone numbers from ``phone_formats`` where it has none."""

    def __init__(self, locale: str, seed: int, formats: list[str] | None) -> None:
        super().__init__(locale, seed)
        self.formats = formats

    def phone(self, d: Draw) -> str:
        return d.mask(d.pick(self.formats)) if self.formats else super().phone(d)


_PLACES = G._places


def _places(split: Split, seed: int) -> dict[str, Any]:
    if split.templates_file != str(V2_FILE):
        return dict(_PLACES(split, seed))
    phones = _v2_spec()["phone_formats"]
    return {
        loc: _V2Places(loc, seed * 100 + i, phones.get(loc)) for i, loc in enumerate(split.locales)
    }


G._places = _places


def _pools_with_fallback(split: Split) -> dict[str, Any]:
    if split.templates_file == str(V2_FILE):
        return dict(v2_pools(split))
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
    sources: list[list[Any]] = []
    t0 = time.time()
    for i in range(0, len(texts), 512):
        batch = scanner.scan(texts[i : i + 512])
        for doc, spans in zip(docs[i : i + 512], batch.spans, strict=True):
            pred = rename([(s.start, s.end, s.entity) for s in spans])[0]
            preds.append(pred)
            sources.append([[s.start, s.end, s.entity, s.source] for s in spans])
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
        for d, p, s, src in zip(docs, preds, scrubbed, sources, strict=True):
            row = {
                "text": d.text,
                "template": d.template,
                "labels": [[x.start, x.end, x.entity, x.kind] for x in d.labels],
                "pred": p,
                "sources": src,
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
    ap.add_argument("--v2", action="store_true", help="the second proxy set, shipped detector")
    a = ap.parse_args()

    real = G.load_split("train")
    a.out.mkdir(parents=True, exist_ok=True)
    if a.v2 and a.model is None:
        folder = shipped()[-1].path
    elif a.model is None:
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
    held = (
        {"proxy2": v2_split(real), "proxy2-fresh": v2_split(real, fresh=True)}
        if a.v2
        else {"proxy": part(real, True)}
    )
    dev = real if a.v2 else part(real, False)
    sets = held | ({} if a.no_dev else {"dev": dev})
    results = {
        name: score(scanner, gen(sp, a.eval, PROXY_SEED), a.out, name) for name, sp in sets.items()
    }
    (a.out / "results.json").write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
