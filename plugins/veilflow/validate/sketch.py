"""Keyed 64-bit hashes of text values, vectorized over a chunk, and what the gate merges
from them: sorted hash arrays instead of values (ADR 0016).

A sketch only ever raises a false alarm: equal values always hash alike, so a duplicate or
an inconsistency in the data always shows in the hashes; two distinct values that happen to
share a hash can make a check look failed, and every check that fails on hashes alone is
confirmed on the text itself in PostgreSQL before it counts (see ``validate.merge``).

The hash of a value (its UTF-8 bytes, zero padded to whole 8-byte words ``w_j``) is
``fmix64(Σ_j f(w_j · K_j) ⊕ (len + 1) · K_len)`` over keyed multipliers ``K_j`` derived from the run's
gate key, with ``f(x) = x ⊕ (x >> 29)``: a zero word adds nothing, so the padding width never
changes a hash, and every process of a run hashes alike. The key is random per run and lives
with the sketches in the run's staging tables, which are dropped with the run.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

#: Bytes of a run's gate key.
KEY_BYTES = 32
#: Values up to this many bytes are hashed as one row of a padded matrix; longer ones (and
#: values with multi-byte characters) one by one, with the same formula.
_WIDE = 64
_WORDS = 64
_PHI = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xFF51AFD7ED558CCD)
_M2 = np.uint64(0xC4CEB9FE1A85EC53)
_S29, _S33 = np.uint64(29), np.uint64(33)


def new_key() -> bytes:
    return secrets.token_bytes(KEY_BYTES)


@lru_cache(maxsize=16)
def _multipliers(key: bytes, lane: int) -> np.ndarray:
    raw = hashlib.shake_256(key + b"veilflow-gate-lane" + bytes([lane])).digest(8 * (_WORDS + 1))
    return np.frombuffer(raw, dtype="<u8").astype(np.uint64) | np.uint64(1)


def _fmix(h: np.ndarray) -> np.ndarray:
    h ^= h >> _S33
    h *= _M1
    h ^= h >> _S33
    h *= _M2
    h ^= h >> _S33
    return h


def as_strings(values: pd.Series | pa.Array | pa.ChunkedArray) -> pa.StringArray:
    """One contiguous Arrow string array of ``values`` (NULL stays NULL)."""
    if isinstance(values, pd.Series):
        arr = pa.array(values.array) if not isinstance(values.dtype, np.dtype) else None
        if arr is None:
            arr = pa.array(values.astype("string[pyarrow]").array)
        values = arr
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks() if values.num_chunks else pa.array([], pa.string())
    if values.type != pa.string():
        values = values.cast(pa.string())
    assert isinstance(values, pa.StringArray)
    return values


def hash_strings(
    values: pd.Series | pa.Array | pa.ChunkedArray, key: bytes, lane: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """(hashes, valid): a keyed 64-bit hash per value and whether the value was not NULL
    (NULL rows hash to 0)."""
    arr = as_strings(values)
    n = len(arr)
    out = np.zeros(n, dtype=np.uint64)
    valid = ~np.asarray(arr.is_null().to_numpy(zero_copy_only=False), dtype=bool)
    if n == 0 or not valid.any():
        return out, valid
    k = _multipliers(key, lane)
    blen = np.asarray(pc.binary_length(arr).fill_null(0).to_numpy(), dtype=np.int64)
    clen = np.asarray(pc.utf8_length(arr).fill_null(0).to_numpy(), dtype=np.int64)
    width = int(min(_WIDE, max(8, -(-int(blen[valid].max()) // 8) * 8)))
    fixed = valid & (blen == clen) & (blen <= width)
    rows = np.flatnonzero(fixed)
    if rows.size:
        padded = pc.utf8_rpad(arr.take(pa.array(rows)), width=width, padding="\x00")
        bufs = padded.buffers()
        offsets = np.frombuffer(bufs[1], dtype=np.int32)
        start = int(offsets[padded.offset])
        data = np.frombuffer(bufs[2], dtype=np.uint8)[start : start + width * rows.size]
        words = data.view("<u8").reshape(rows.size, width // 8)
        h = np.zeros(rows.size, dtype=np.uint64)
        for j in range(width // 8):
            x = words[:, j].astype(np.uint64) * k[j]
            x ^= x >> _S29
            h += x
        h ^= (blen[rows] + 1).astype(np.uint64) * k[_WORDS]
        out[rows] = _fmix(h)
    for i in np.flatnonzero(valid & ~fixed):
        out[i] = _hash_one(str(arr[int(i)].as_py()).encode(), k)
    return out, valid


def _hash_one(data: bytes, k: np.ndarray) -> np.uint64:
    """The same hash as the padded-matrix path, for one value of any length."""
    padded = data + b"\x00" * (-len(data) % 8)
    words = np.frombuffer(padded, dtype="<u8").astype(np.uint64)
    mult = k[np.arange(words.size) % _WORDS]
    x = words * mult
    x ^= x >> _S29
    length = np.array([len(data) + 1], dtype=np.uint64) * k[_WORDS]
    h = np.array([x.sum(dtype=np.uint64)], dtype=np.uint64) ^ length
    return np.uint64(_fmix(h)[0])


def combine(hashes: list[np.ndarray], key: bytes, lane: int = 0) -> np.ndarray:
    """One hash of several columns' hashes, row by row (the order of columns matters)."""
    k = _multipliers(key, lane)
    h = np.zeros(hashes[0].size if hashes else 0, dtype=np.uint64)
    for j, col in enumerate(hashes):
        x = (col ^ k[_WORDS - j % _WORDS]) * k[j % _WORDS]
        x ^= x >> _S29
        h += x
    return _fmix(h ^ np.uint64(len(hashes)))


def null_token(key: bytes, lane: int) -> np.uint64:
    """What a NULL hashes to where NULL is a value of its own (a class, a sensitive value)."""
    return np.uint64(_multipliers(key, lane)[_WORDS] ^ _PHI)


# --------------------------------------------------------------------------- merging


@dataclass(frozen=True)
class PairCounts:
    """Of a relation between originals (``a``) and outputs (``b``) given as hash pairs:
    outputs with more than one original, originals with more than one output."""

    shared_outputs: int
    split_originals: int


def distinct_pairs(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The pairs sorted by b, repeats next to each other dropped (a repeat left elsewhere
    changes no count of :func:`pair_counts`)."""
    if a.size == 0:
        return a.astype(np.uint64), b.astype(np.uint64)
    order = np.argsort(b)
    a, b = a[order], b[order]
    keep = np.r_[True, (a[1:] != a[:-1]) | (b[1:] != b[:-1])]
    return a[keep], b[keep]


def _groups_with_two(key: np.ndarray, val: np.ndarray, presorted: bool) -> int:
    """Number of distinct ``key`` values that go with more than one distinct ``val``."""
    if key.size < 2:
        return 0
    if not presorted:
        # Most columns never repeat an original: a plain sort (cheaper than an argsort)
        # settles those.
        s = np.sort(key)
        if not np.any(s[1:] == s[:-1]):
            return 0
    order = np.argsort(key, kind="stable" if presorted else "quicksort")
    k = key[order]
    same = k[1:] == k[:-1]
    if not same.any():
        return 0
    v = val[order]
    starts = np.flatnonzero(np.r_[True, ~same])
    lo = np.minimum.reduceat(v, starts)
    hi = np.maximum.reduceat(v, starts)
    return int(np.count_nonzero(lo != hi))


def pair_counts(a: np.ndarray, b: np.ndarray, *, sorted_runs: bool = True) -> PairCounts:
    """Counts of :class:`PairCounts` over pairs merged from several chunks, each chunk's
    pairs sorted by ``b`` (``sorted_runs``: a stable sort merges the runs cheaply)."""
    return PairCounts(
        shared_outputs=_groups_with_two(b, a, sorted_runs),
        split_originals=_groups_with_two(a, b, False),
    )


def duplicated(h: np.ndarray) -> np.ndarray:
    """Whether each hash occurs more than once in ``h``."""
    if h.size < 2:
        return np.zeros(h.size, dtype=bool)
    order = np.argsort(h, kind="stable")
    s = h[order]
    eq = s[1:] == s[:-1]
    dup_sorted = np.r_[False, eq] | np.r_[eq, False]
    out = np.empty(h.size, dtype=bool)
    out[order] = dup_sorted
    return out


def found_in(h: np.ndarray, parts: list[np.ndarray]) -> np.ndarray:
    """Whether each hash of ``h`` (a run's, a few) occurs in any of ``parts`` (the published
    version's, many): one hash-table probe per kept hash, no sort of them."""
    found = np.zeros(h.size, dtype=bool)
    if not h.size or not parts:
        return found
    index = pd.Index(np.unique(h))
    for part in parts:
        pos = index.get_indexer(part)
        hit = pos[pos >= 0]
        if hit.size:
            found |= np.isin(h, index.to_numpy()[hit])
    return found


def touching(
    a: np.ndarray, b: np.ndarray, kept_a: list[np.ndarray], kept_b: list[np.ndarray]
) -> tuple[np.ndarray, np.ndarray]:
    """The kept (original, output) pairs that share an original with ``a`` or an output
    with ``b`` (a run's pairs): the only kept pairs that can make the union inconsistent
    when the kept pairs alone are consistent."""
    if not a.size or not kept_a:
        return np.zeros(0, np.uint64), np.zeros(0, np.uint64)
    originals, outputs = pd.Index(np.unique(a)), pd.Index(np.unique(b))
    out_a, out_b = [], []
    for pa_, pb_ in zip(kept_a, kept_b, strict=True):
        near = (originals.get_indexer(pa_) >= 0) | (outputs.get_indexer(pb_) >= 0)
        if near.any():
            out_a.append(pa_[near])
            out_b.append(pb_[near])
    if not out_a:
        return np.zeros(0, np.uint64), np.zeros(0, np.uint64)
    return np.concatenate(out_a), np.concatenate(out_b)


def to_bytes(*arrays: np.ndarray) -> bytes:
    """Arrays of equal length as one little-endian buffer (column after column)."""
    return b"".join(np.ascontiguousarray(a, dtype="<u8").tobytes() for a in arrays)


def from_bytes(data: bytes, columns: int) -> list[np.ndarray]:
    """The inverse of :func:`to_bytes`; ``ValueError`` when the length does not fit."""
    if columns < 1 or len(data) % (8 * columns):
        raise ValueError(f"a sketch of {len(data)} bytes is not {columns} column(s) of 64 bits")
    flat = np.frombuffer(data, dtype="<u8").astype(np.uint64)
    n = flat.size // columns
    return [flat[i * n : (i + 1) * n] for i in range(columns)]
