"""Keep detection offline: Presidio's email recognizer calls tldextract, whose default
extractor downloads the public-suffix list on first use. We swap in an extractor that reads
only the snapshot bundled with tldextract and never fetches or caches anything."""

from __future__ import annotations

import logging

log = logging.getLogger(__name__)

_done = False


def ensure_offline() -> None:
    """Point tldextract at its bundled public-suffix snapshot (idempotent, process-wide)."""
    global _done
    if _done:
        return
    import os

    os.environ.setdefault("TLDEXTRACT_PUBLIC_SUFFIX_LIST_URLS", "")
    import tldextract
    import tldextract.tldextract as impl

    offline = tldextract.TLDExtract(suffix_list_urls=(), cache_dir=None, fallback_to_snapshot=True)
    impl.TLD_EXTRACTOR = offline
    # Load the snapshot now, so the first scan pays nothing and provably fetches nothing.
    offline("example.com")
    _done = True
    log.debug("tldextract pinned to its bundled public-suffix snapshot")
