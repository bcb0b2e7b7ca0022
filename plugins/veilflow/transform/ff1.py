"""FF1 format-preserving encryption (NIST SP 800-38G), vectorized over a chunk.

This module owns the cipher: FF1.Encrypt and FF1.Decrypt (SP 800-38G Algorithms 7 and 8) with
AES-128/192/256 as the block cipher. FF1 only: FF3 and FF3-1 were withdrawn in the 2025 draft
revision of SP 800-38G (SP 800-38G Rev. 1, second public draft), which keeps FF1 and raises the
minimum domain size from a recommendation to a requirement.

Parameters enforced, per that draft revision:

* ``2 <= radix <= 2**16``;
* ``radix**n >= 1,000,000`` for every message length ``n`` (and ``n >= 2``);
* ``n < 2**32`` (maxlen) and tweak length ``t < 2**32`` bytes (maxTlen).

Vectorized means no Python loop per value on the hot path: all values of one length go
through each Feistel round together. The round function is a CBC-MAC over ``P || Q``; the
blocks of ``Q`` before the one holding the round number ``[i]`` carry only the tweak, so
their CBC-MAC chain is computed once per call (one batched AES-ECB call per block position
when each value has its own tweak), and each round then costs one batched ECB call over all
values' last ``Q`` block (plus one per further block position and one for the ``S``
extension blocks when ``NUM(B)`` is wider than the block). Values whose right half fits in
56 bits (``radix**ceil(n/2) <= 2**56``: up to 32 decimal digits, 28 hex or 20 base-36
characters) keep both halves as numpy ``uint64``; longer values keep the halves as Python
integers in object arrays while the AES work stays batched.

Public API:

* ``encrypt(key, tweak, values, alphabet)`` / ``decrypt(...)``: whole strings over
  ``alphabet`` (its characters in numeral order: ``"0123456789"`` is radix 10);
* ``FF1(key).encrypt_numerals(x, radix, tweak)``: an ``(N, n)`` numeral matrix, where
  ``tweak`` is one ``bytes`` for all rows or an ``(N, t)`` ``uint8`` matrix (one tweak per
  row, one common length);
* ``FF1(key).encrypt_ragged(numerals, lengths, radix, tweak)``: concatenated numeral strings
  of mixed lengths (what the ``ff1`` operator uses).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from numpy.typing import NDArray

from veilflow.errors import TransformError
from veilflow.policy.operators import FF1_MAX_RADIX

ROUNDS = 10
MIN_DOMAIN = 1_000_000
MAX_RADIX = FF1_MAX_RADIX
#: maxlen and maxTlen: FF1 needs ``n < 2**32`` and ``t < 2**32``.
MAX_LENGTH = (1 << 32) - 1
#: Rows per internal batch: large enough that AES and numpy amortize their call overhead,
#: small enough that a batch's working arrays stay in the CPU cache
#: (``benchmarks/ff1_throughput.py`` picks it by measurement).
BATCH_ROWS = 16384
#: Right halves up to this size keep the round arithmetic in uint64.
_FAST_LIMIT = 1 << 56

Tweak = bytes | NDArray[np.uint8]
Numerals = NDArray[np.uint16]


class FF1DomainError(TransformError, ValueError):
    """Values or parameters outside what FF1 allows (radix, length, domain size, alphabet).

    Names the column when the caller knows it; never a value.
    """

    def __init__(self, message: str, *, column: str | None = None) -> None:
        self.column = column
        super().__init__(f"column {column!r}: {message}" if column else message)


def min_length(radix: int) -> int:
    """The shortest message length FF1 accepts for ``radix``: ``radix**n >= 1,000,000``."""
    check_radix(radix)
    n = 2
    while radix**n < MIN_DOMAIN:
        n += 1
    return n


def check_radix(radix: int) -> None:
    if not 2 <= radix <= MAX_RADIX:
        raise FF1DomainError(f"FF1 needs 2 <= radix <= 2**16, got radix {radix}")


def check_domain(radix: int, length: int, *, column: str | None = None) -> None:
    """Raise ``FF1DomainError`` unless FF1 may encrypt messages of ``length`` over ``radix``."""
    check_radix(radix)
    if length > MAX_LENGTH:
        raise FF1DomainError(
            f"FF1 messages must be shorter than 2**32 numerals, got {length}", column=column
        )
    if length < 2 or radix**length < MIN_DOMAIN:
        raise FF1DomainError(
            f"FF1 needs radix**length >= {MIN_DOMAIN:,} (SP 800-38G Rev. 1 draft): radix "
            f"{radix} needs at least {min_length(radix)} numerals, got {length}",
            column=column,
        )


# ---------------------------------------------------------------------------------------
# Parameters fixed per (radix, n, t)
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Params:
    radix: int
    n: int
    t: int
    u: int
    v: int
    #: Bytes of NUM(B) in Q, and bytes of S used for y.
    b: int
    d: int
    #: Length of Q (a multiple of 16) and the first Q block holding round data.
    q_len: int
    first_round_block: int
    P: bytes
    fast: bool
    mod_u: int
    mod_v: int


@lru_cache(maxsize=256)
def _params(radix: int, n: int, t: int) -> _Params:
    u = n // 2
    v = n - u
    # b = ceil(ceil(v * log2(radix)) / 8), exactly: ceil(log2(radix**v)) is the bit length
    # of radix**v - 1.
    b = ((radix**v - 1).bit_length() + 7) // 8
    d = 4 * ((b + 3) // 4) + 4
    q_len = t + ((-t - b - 1) % 16) + 1 + b
    P = (
        bytes((1, 2, 1))
        + radix.to_bytes(3, "big")
        + bytes((ROUNDS, u % 256))
        + n.to_bytes(4, "big")
        + t.to_bytes(4, "big")
    )
    return _Params(
        radix=radix,
        n=n,
        t=t,
        u=u,
        v=v,
        b=b,
        d=d,
        q_len=q_len,
        first_round_block=(q_len - b - 1) // 16,
        P=P,
        fast=radix**v <= _FAST_LIMIT,
        mod_u=radix**u,
        mod_v=radix**v,
    )


# ---------------------------------------------------------------------------------------
# The cipher
# ---------------------------------------------------------------------------------------


class FF1:
    """FF1 under one AES key (16, 24 or 32 bytes). Holds no per-call state."""

    def __init__(self, key: bytes) -> None:
        if len(key) not in (16, 24, 32):
            raise FF1DomainError("FF1 needs an AES-128, -192 or -256 key (16, 24 or 32 bytes)")
        self._aes = algorithms.AES(bytes(key))

    def __repr__(self) -> str:
        return "FF1(<key hidden>)"

    # -- numeral matrices -----------------------------------------------------------------

    def encrypt_numerals(
        self,
        x: NDArray[Any],
        radix: int,
        tweak: Tweak = b"",
        *,
        batch_rows: int = BATCH_ROWS,
        wide: bool = False,
    ) -> Numerals:
        """FF1.Encrypt of each row of ``x`` (an ``(N, n)`` matrix of numerals < radix).

        ``wide=True`` forces the Python-integer path (for testing it on short values)."""
        return self._crypt(x, radix, tweak, encrypt=True, batch_rows=batch_rows, wide=wide)

    def decrypt_numerals(
        self,
        x: NDArray[Any],
        radix: int,
        tweak: Tweak = b"",
        *,
        batch_rows: int = BATCH_ROWS,
        wide: bool = False,
    ) -> Numerals:
        """FF1.Decrypt of each row of ``x``; the inverse of ``encrypt_numerals``."""
        return self._crypt(x, radix, tweak, encrypt=False, batch_rows=batch_rows, wide=wide)

    def encrypt_ragged(
        self,
        numerals: NDArray[Any],
        lengths: NDArray[Any],
        radix: int,
        tweak: Tweak = b"",
        *,
        batch_rows: int = BATCH_ROWS,
    ) -> Numerals:
        """FF1.Encrypt of strings of mixed lengths, concatenated in ``numerals``; row ``i``
        has ``lengths[i]`` numerals. Rows of one length share every round. Returns the
        ciphertexts in the same layout."""
        return self._ragged(numerals, lengths, radix, tweak, encrypt=True, batch_rows=batch_rows)

    def decrypt_ragged(
        self,
        numerals: NDArray[Any],
        lengths: NDArray[Any],
        radix: int,
        tweak: Tweak = b"",
        *,
        batch_rows: int = BATCH_ROWS,
    ) -> Numerals:
        """The inverse of ``encrypt_ragged``."""
        return self._ragged(numerals, lengths, radix, tweak, encrypt=False, batch_rows=batch_rows)

    def _ragged(
        self,
        numerals: NDArray[Any],
        lengths: NDArray[Any],
        radix: int,
        tweak: Tweak,
        *,
        encrypt: bool,
        batch_rows: int,
    ) -> Numerals:
        flat = np.asarray(numerals)
        lens = np.asarray(lengths, dtype=np.int64)
        out = np.empty(flat.shape[0], dtype=np.uint16)
        if lens.size == 0:
            return out
        starts = np.zeros(lens.size, dtype=np.int64)
        np.cumsum(lens[:-1], out=starts[1:])
        per_row = not isinstance(tweak, (bytes, bytearray))
        for n in np.unique(lens).tolist():
            rows = np.flatnonzero(lens == n)
            if rows.size == lens.size:
                at: NDArray[np.int64] | None = None
                block = flat.reshape(rows.size, n)
            else:
                at = (starts[rows][:, None] + np.arange(n)).ravel()
                block = flat[at].reshape(rows.size, n)
            row_tweak = np.asarray(tweak)[rows] if per_row else tweak
            res = self._crypt(block, radix, row_tweak, encrypt=encrypt, batch_rows=batch_rows)
            if at is None:
                out[:] = res.ravel()
            else:
                out[at] = res.ravel()
        return out

    def _crypt(
        self,
        x: NDArray[Any],
        radix: int,
        tweak: Tweak,
        *,
        encrypt: bool,
        batch_rows: int,
        wide: bool = False,
    ) -> Numerals:
        x = np.asarray(x)
        if x.ndim != 2:
            raise FF1DomainError("numerals must be an (N, n) matrix")
        rows, n = x.shape
        check_domain(radix, n)
        common = b""
        per_row: NDArray[np.uint8] | None = None
        if isinstance(tweak, (bytes, bytearray)):
            common = bytes(tweak)
            t = len(common)
        else:
            per_row = np.ascontiguousarray(tweak, dtype=np.uint8)
            if per_row.ndim != 2 or per_row.shape[0] != rows:
                raise FF1DomainError("per-row tweaks must be an (N, t) uint8 matrix")
            t = per_row.shape[1]
        if t > MAX_LENGTH:
            raise FF1DomainError("FF1 tweaks must be shorter than 2**32 bytes")
        out = np.empty((rows, n), dtype=np.uint16)
        p = _params(radix, n, t)
        step = max(1, batch_rows)
        # One encryptor per call: a cryptography context must not be shared between threads.
        # ECB here is the single-block AES that FF1's round function (a CBC-MAC) is built
        # from, never a mode that encrypts the data itself.
        ecb = Cipher(self._aes, modes.ECB()).encryptor()  # noqa: S305
        work: _Work | None = None
        fixed = None
        if p.fast and not wide and per_row is None:
            fixed = _last_block(ecb, p, common, 1)
        for lo in range(0, rows, step):
            hi = min(rows, lo + step)
            # Checked batch by batch: the batch is then in cache for NUM.
            xb = _checked(x[lo:hi], radix)
            tw: Tweak = common if per_row is None else per_row[lo:hi]
            if p.fast and not wide:
                if work is None:
                    work = _Work(min(step, rows), n)
                _crypt_fast(ecb, p, xb, tw, encrypt, work, out[lo:hi], fixed)
            else:
                out[lo:hi] = _crypt_wide(ecb, p, xb, tw, encrypt)
        return out


# ---------------------------------------------------------------------------------------
# Round machinery
# ---------------------------------------------------------------------------------------


def _checked(x: NDArray[Any], radix: int) -> NDArray[np.uint16]:
    """``x`` as uint16 numerals, or ``FF1DomainError`` if any is outside ``[0, radix)``."""
    if x.size and (int(x.max()) >= radix or (x.dtype.kind != "u" and int(x.min()) < 0)):
        raise FF1DomainError(f"numerals must be below the radix {radix}")
    return x.astype(np.uint16, copy=False)


def _ecb_rows(ecb: Any, blocks: NDArray[np.uint8]) -> NDArray[np.uint8]:
    """AES of each 16-byte row of ``blocks`` in one ECB call."""
    data = np.ascontiguousarray(blocks, dtype=np.uint8)
    return np.frombuffer(ecb.update(data.tobytes()), dtype=np.uint8).reshape(data.shape)


def _q_template(p: _Params, tweak: bytes | NDArray[np.uint8], rows: int) -> NDArray[np.uint8]:
    """Q with ``[i]`` and ``NUM(B)`` zeroed: one row for a common tweak, else one per value."""
    if isinstance(tweak, (bytes, bytearray)):
        q = np.zeros((1, p.q_len), dtype=np.uint8)
        q[0, : p.t] = np.frombuffer(bytes(tweak), dtype=np.uint8)
    else:
        q = np.zeros((rows, p.q_len), dtype=np.uint8)
        q[:, : p.t] = tweak
    return q


def _chain_prefix(ecb: Any, p: _Params, q: NDArray[np.uint8], blocks: int) -> NDArray[np.uint8]:
    """The CBC-MAC state after ``P`` and the first ``blocks`` blocks of Q (tweak only), one
    row per row of ``q``: the same in every round, so computed once per call."""
    state = np.frombuffer(ecb.update(p.P), dtype=np.uint8)[None, :].repeat(q.shape[0], axis=0)
    for k in range(blocks):
        state = _ecb_rows(ecb, state ^ q[:, 16 * k : 16 * k + 16])
    return state


def _be_u64(a: NDArray[np.uint8]) -> NDArray[np.uint64]:
    """The 8-byte big-endian rows of ``a`` as native uint64."""
    return np.ascontiguousarray(a).view(">u8").reshape(a.shape[0]).astype(np.uint64)


def _num_u64(x: NDArray[Any], radix: int) -> NDArray[np.uint64]:
    """NUM_radix of each row (fits in uint64 by construction)."""
    r = np.uint64(radix)
    acc = x[:, 0].astype(np.uint64)
    for j in range(1, x.shape[1]):
        acc *= r
        acc += x[:, j]
    return acc


class _Work:
    """Arrays one call reuses for every batch: allocating them per batch costs page faults
    (fresh memory from the OS) that outweigh the arithmetic."""

    def __init__(self, rows: int, n: int) -> None:
        # One pool for the AES input and output blocks, and one for y and tmp: NUM runs
        # before the rounds and STR after them, so their scratch (words, groups, STR limbs)
        # borrows these when it fits. Fewer distinct bytes per batch stay in cache better.
        pool = np.empty(32 * rows + 15, dtype=np.uint8)
        pair = np.empty(2 * rows, dtype=np.uint64)
        self.blocks_raw = pool[: 16 * rows]
        #: The AES input blocks as big-endian words, and both buffers as byte views made
        #: once (a memoryview of a non-native dtype goes through a slow ctypes check).
        self.blocks = self.blocks_raw.view(">u8").reshape(rows, 2)
        self.out = pool[16 * rows :]
        self.blocks_mv = memoryview(self.blocks_raw)  # type: ignore[arg-type]
        self.out_mv = memoryview(self.out)  # type: ignore[arg-type]
        self.a = np.empty(rows, dtype=np.uint64)
        self.b = np.empty(rows, dtype=np.uint64)
        self.y = pair[:rows]
        self.tmp = pair[rows:]
        #: Four numerals per uint64 word (``_num_nibbles``; also STR's limbs) and their
        #: values: in the block pool and the y/tmp pair when n <= 16.
        g = max(1, n // 4)
        if g <= 4:
            self.words = pool[: 8 * g * rows].view(np.uint64).reshape(rows, g)
            self.groups = pair.view(np.uint32)[: g * rows].reshape(rows, g)
        else:
            self.words = np.empty((rows, g), dtype=np.uint64)
            self.groups = np.empty((rows, g), dtype=np.uint32)


def _num_halves(
    x: NDArray[Any], p: _Params, work: _Work
) -> tuple[NDArray[np.uint64], NDArray[np.uint64]]:
    """NUM_radix(A) and NUM_radix(B) of each row, by Horner's rule over the columns (in
    uint32 while the halves fit: half the memory traffic). No BLAS: a threaded matrix
    product would fight the scheduler's own worker processes for cores."""
    rows = x.shape[0]
    a, b = work.a[:rows], work.b[:rows]
    if _nibbles_fit(p) and x.flags.c_contiguous:
        _num_nibbles(x, p, work, a, b)
        return a, b
    small = p.mod_v <= 1 << 32
    for half, lo, hi in ((a, 0, p.u), (b, p.u, p.n)):
        if small:
            r32 = np.uint32(p.radix)
            acc = x[:, lo].astype(np.uint32)
            for j in range(lo + 1, hi):
                acc *= r32
                acc += x[:, j]
            half[:] = acc
        else:
            half[:] = _num_u64(x[:, lo:hi], p.radix)
    return a, b


#: ``(word * _GATHER) >> 48`` packs the four 16-bit lanes of a little-endian uint64 word,
#: each a numeral below 16, into one 16-bit index (lane j at bits 4j..4j+3): every other
#: partial product lands in bits 12..47 without overlapping, so nothing carries upwards.
_GATHER = np.uint64((1 << 48) + (1 << 36) + (1 << 24) + (1 << 12))


def _nibbles_fit(p: _Params) -> bool:
    """Whether NUM may go four numerals per uint64 word: radix <= 16 and both halves made
    of whole words (16-digit card numbers: two words per half)."""
    return p.radix <= 16 and p.u % 4 == 0 and p.v % 4 == 0 and sys.byteorder == "little"


@lru_cache(maxsize=16)
def _nibble_table(radix: int) -> NDArray[np.uint32]:
    """NUM_radix of the four numerals packed in each 16-bit index (numeral j in bits
    4j..4j+3, the first numeral lowest); uint32 (radix**4 <= 2**16) halves its cache
    footprint. Indices holding a nibble >= radix never occur."""
    idx = np.arange(1 << 16, dtype=np.uint32)
    table = np.zeros(1 << 16, dtype=np.uint32)
    for j in range(4):
        table += ((idx >> np.uint32(4 * j)) & np.uint32(15)) * np.uint32(radix ** (3 - j))
    return table


def _num_nibbles(
    x: NDArray[np.uint16], p: _Params, work: _Work, a: NDArray[np.uint64], b: NDArray[np.uint64]
) -> None:
    """NUM of both halves, four numerals at a time: each uint64 word of the (checked,
    C-contiguous) numerals becomes a 16-bit index by one multiply and shift, a table gives
    the word's value, and Horner's rule in radix**4 joins the words of each half."""
    rows = x.shape[0]
    words = work.words[:rows]
    groups = work.groups[:rows]
    np.multiply(x.view(np.uint64), _GATHER, out=words)
    np.right_shift(words, np.uint64(48), out=words)
    # Indices are below 2**16: mode="clip" skips the bounds check per index.
    np.take(_nibble_table(p.radix), words.view(np.int64), out=groups, mode="clip")
    base = np.uint64(p.radix**4)
    for half, lo, hi in ((a, 0, p.u // 4), (b, p.u // 4, p.n // 4)):
        if hi - lo == 1:
            np.copyto(half, groups[:, lo])
            continue
        np.multiply(groups[:, lo], base, out=half)
        half += groups[:, lo + 1]
        for j in range(lo + 2, hi):
            half *= base
            half += groups[:, j]


@lru_cache(maxsize=64)
def _digit_table(radix: int) -> tuple[int, NDArray[Any], np.dtype[Any]]:
    """Numerals of every k-numeral string, one row per value below radix**k (at most 16384
    rows, so the table stays in cache): STR becomes one division per k numerals and a
    gather of whole rows. Returns k, the table with each row as one item, and that item's
    dtype: a plain unsigned integer when the row is 2, 4 or 8 bytes (numpy's take copies
    those far faster than void items)."""
    k = 1
    while radix ** (k + 1) <= 16384:
        k += 1
    size = radix**k
    table = np.empty((size, k), dtype=np.uint16)
    acc = np.arange(size, dtype=np.int64)
    for j in range(k - 1, -1, -1):
        acc, table[:, j] = np.divmod(acc, radix)
    row = np.dtype(f"u{2 * k}") if k in (1, 2, 4) else np.dtype((np.void, 2 * k))
    return k, table.view(row).reshape(-1), row


def _str_u64(value: NDArray[np.uint64], radix: int, width: int) -> Numerals:
    """STR_radix^width of each value."""
    out = np.empty((value.shape[0], width), dtype=np.uint16)
    _str_into(out, ((value, 0, width),), radix)
    return out


def _str_into(
    dest: NDArray[np.uint16],
    halves: tuple[tuple[NDArray[np.uint64], int, int], ...],
    radix: int,
    work: _Work | None = None,
) -> None:
    """Write STR_radix^width(value) into ``dest[:, at:at + width]`` for each
    (value, at, width): k-numeral limbs by division, then one gather of table rows.
    ``work`` lends buffers that are free by then (its words, y and tmp)."""
    k, packed, row = _digit_table(radix)
    rows = dest.shape[0]
    base = np.uint64(radix**k)
    limbs = [-(-width // k) for _, _, width in halves]
    # Contiguous buffers for the limb arithmetic (floor_divide only takes numpy's fast
    # scalar-divisor path with a contiguous output), then strided copies into parts.
    if work is not None and work.words.shape[1] == sum(limbs):
        parts = work.words[:rows].view(np.intp)
        r, q0 = work.y[:rows], work.tmp[:rows]
    else:
        parts = np.empty((rows, sum(limbs)), dtype=np.intp)
        r, q0 = np.empty(rows, dtype=np.uint64), np.empty(rows, dtype=np.uint64)
    quotients = (q0, q0 if max(limbs) <= 2 else np.empty(rows, dtype=np.uint64))
    col = 0
    for (value, _, _), count in zip(halves, limbs, strict=True):
        acc = value
        for step, j in enumerate(range(count - 1, 0, -1)):
            q = quotients[step % 2]
            np.floor_divide(acc, base, out=q)
            np.multiply(q, base, out=r)
            np.subtract(acc, r, out=r)
            parts[:, col + j] = r
            acc = q
        parts[:, col] = acc
        col += count
    exact = all(width % k == 0 for _, _, width in halves)
    # mode="clip" skips the per-index bounds check; every limb is below radix**k.
    if exact and dest.flags.c_contiguous and sum(limbs) * k == dest.shape[1]:
        np.take(packed, parts, out=dest.view(row).reshape(rows, -1), mode="clip")
        return
    digits = np.take(packed, parts, mode="clip").view(np.uint16).reshape(rows, -1)
    col = 0
    for (_, at, width), count in zip(halves, limbs, strict=True):
        end = (col + count) * k
        dest[:, at : at + width] = digits[:, end - width : end]
        col += count


def _last_block(
    ecb: Any, p: _Params, tweak: bytes | NDArray[np.uint8], rows: int
) -> tuple[NDArray[np.uint64], NDArray[np.uint64]]:
    """X = (CBC-MAC state before the last Q block) xor (that block with ``[i]`` and NUM(B)
    zeroed), as its high and low 8 bytes: the high half is the same in every round, the low
    half differs only in ``[i]`` and NUM(B). One row for a common tweak, else one per row."""
    q = _q_template(p, tweak, rows)
    last = p.q_len // 16 - 1
    state = _chain_prefix(ecb, p, q, last)
    base = state ^ q[:, 16 * last :]
    return _be_u64(base[:, :8]), _be_u64(base[:, 8:])


def _crypt_fast(
    ecb: Any,
    p: _Params,
    x: NDArray[Any],
    tweak: bytes | NDArray[np.uint8],
    encrypt: bool,
    work: _Work,
    dest: NDArray[np.uint16],
    fixed: tuple[NDArray[np.uint64], NDArray[np.uint64]] | None = None,
) -> None:
    """Both halves and all round arithmetic in uint64 (``radix**v <= 2**56``, so b <= 7 and
    ``[i] || NUM(B)`` sit in the low half of the last Q block). ``fixed`` is
    ``_last_block`` for a common tweak, computed once per call."""
    rows = x.shape[0]
    hi, lo = fixed if fixed is not None else _last_block(ecb, p, tweak, rows)
    shared = hi.shape[0] == 1
    if shared:
        hi_v: Any = hi[0]
        lo_v: Any = lo[0]
    else:
        hi_v, lo_v = hi, lo
    shift = 8 * p.b
    a, b = _num_halves(x, p, work)
    blocks = work.blocks[:rows]
    blocks[:, 0] = hi_v
    blocks_in = work.blocks_mv[: 16 * rows]
    out = work.out[: 16 * rows + 15]
    out_view = work.out_mv[: 16 * rows + 15]
    r_words = out[: 16 * rows].view(">u8").reshape(rows, 2)
    mod_u, mod_v = np.uint64(p.mod_u), np.uint64(p.mod_v)
    y = work.y[:rows]
    tmp = work.tmp[:rows]
    # The largest y for which A + y fits in uint64 (A < m <= mod_v); the smallest y for
    # which B - y surely wraps (y >= 2m > B) yet B - y + 2**64 + ((-2**64) mod m) does not.
    fold_add = (1 << 64) - 1 - (p.mod_v - 1)
    fold_sub = {mod: 2 * int(mod) for mod in (mod_u, mod_v)}
    neg_wrap = {mod: np.uint64(-(1 << 64) % int(mod)) for mod in (mod_u, mod_v)}
    order = range(ROUNDS) if encrypt else range(ROUNDS - 1, -1, -1)
    # In-place arithmetic on preallocated arrays: at this size the numpy passes themselves,
    # not the AES calls, set the pace.
    for i in order:
        m = mod_u if i % 2 == 0 else mod_v
        # Encrypt feeds NUM(B) to the round function, decrypt NUM(A) (Algorithm 8, step 6.i).
        fed = b if encrypt else a
        # y is free until R arrives: the common rounds below touch only a, b, y and the
        # two block buffers, which keeps a batch's working set small.
        if shared:
            np.bitwise_xor(fed, lo_v ^ np.uint64(i << shift), out=y)
        else:
            np.bitwise_xor(fed, lo_v, out=y)
            y ^= np.uint64(i << shift)
        blocks[:, 1] = y
        ecb.update_into(blocks_in, out_view)
        if p.d == 8:
            np.copyto(y, r_words[:, 0])
            if encrypt and int(np.maximum.reduce(y)) <= fold_add:
                # A + y cannot wrap: C = (A + y) mod m in one reduction, no y mod m first.
                np.add(a, y, out=a)
                _mod(a, m, y)
                a, b = b, a
                continue
            if not encrypt and int(np.minimum.reduce(y)) >= fold_sub[m]:
                # B - y wraps exactly once (y > B), i.e. adds 2**64; adding
                # (-2**64) mod m cannot wrap again, so one reduction finishes it.
                np.subtract(b, y, out=b)
                b += neg_wrap[m]
                _mod(b, m, y)
                a, b = b, a
                continue
            _mod(y, m, tmp)
        else:
            _y_mod(r_words, p.d, m, y, tmp)
        if encrypt:
            # C = (A + y) mod m lands in A's array; then A, B = B, C.
            c = a
            np.add(a, y, out=c)
        else:
            # C = (B - y) mod m lands in B's array; then A, B = C, A.
            c = b
            np.subtract(m, y, out=y)
            np.add(b, y, out=c)
        # Unsigned wrap-around makes this min a branch-free "subtract m where c >= m".
        np.subtract(c, m, out=tmp)
        np.minimum(c, tmp, out=c)
        if encrypt:
            a, b = b, c
        else:
            a, b = c, a
    _str_into(dest, ((a, 0, p.u), (b, p.u, p.v)), p.radix, work)


def _mod(x: NDArray[np.uint64], m: np.uint64, q: NDArray[np.uint64]) -> None:
    """x %= m in place. numpy divides by a scalar through libdivide in ``floor_divide``
    but not in ``remainder``, so x - (x // m) * m is several times faster than x % m."""
    np.floor_divide(x, m, out=q)
    q *= m
    x -= q


def _y_mod(
    r_words: NDArray[Any], d: int, m: np.uint64, y: NDArray[np.uint64], q: NDArray[np.uint64]
) -> None:
    """y = NUM(first d bytes of R) mod m, for d in {8, 12} and m <= 2**56."""
    np.copyto(y, r_words[:, 0])
    _mod(y, m, q)
    if d == 8:
        return
    w = r_words[:, 1].astype(np.uint64)
    for k in range(d - 8):
        y <<= np.uint64(8)
        y |= (w >> np.uint64(56 - 8 * k)) & np.uint64(0xFF)
        _mod(y, m, q)


def _limb(radix: int) -> int:
    """Numerals per uint64 limb for the wide path."""
    k = 1
    while radix ** (k + 1) < (1 << 63):
        k += 1
    return k


def _num_wide(x: NDArray[Any], radix: int) -> NDArray[np.object_]:
    """NUM_radix of each row as Python integers, built from uint64 limbs."""
    k = _limb(radix)
    width = x.shape[1]
    pad = (-width) % k
    if pad:
        x = np.concatenate([np.zeros((x.shape[0], pad), dtype=x.dtype), x], axis=1)
    base = radix**k
    acc = np.zeros(x.shape[0], dtype=object)
    for j in range(0, x.shape[1], k):
        acc = acc * base + _num_u64(x[:, j : j + k], radix).astype(object)
    return acc


def _str_wide(value: NDArray[np.object_], radix: int, width: int) -> Numerals:
    k = _limb(radix)
    limbs = -(-width // k)
    base = radix**k
    out = np.empty((value.shape[0], limbs * k), dtype=np.uint16)
    acc = value
    for j in range(limbs - 1, -1, -1):
        limb = (acc % base).astype(np.uint64)
        acc = acc // base
        out[:, j * k : (j + 1) * k] = _str_u64(limb, radix, k)
    return out[:, limbs * k - width :]


def _crypt_wide(
    ecb: Any, p: _Params, x: NDArray[Any], tweak: bytes | NDArray[np.uint8], encrypt: bool
) -> Numerals:
    """Halves as Python integers; the AES work stays batched over all rows."""
    rows = x.shape[0]
    q = _q_template(p, tweak, rows)
    k0 = p.first_round_block
    state0 = _chain_prefix(ecb, p, q, k0)
    if state0.shape[0] != rows:
        state0 = state0.repeat(rows, axis=0)
    suffix = np.array(np.broadcast_to(q[:, 16 * k0 :], (rows, p.q_len - 16 * k0)))
    i_at = p.q_len - 16 * k0 - p.b - 1
    extra = -(-p.d // 16) - 1
    # [j]^16 for the S extension blocks, as 16-byte big-endian counters.
    counters = np.frombuffer(
        b"".join(j.to_bytes(16, "big") for j in range(1, extra + 1)), dtype=np.uint8
    ).reshape(extra, 16)
    a = _num_wide(x[:, : p.u], p.radix)
    b = _num_wide(x[:, p.u :], p.radix)
    order = range(ROUNDS) if encrypt else range(ROUNDS - 1, -1, -1)
    for i in order:
        m = p.mod_u if i % 2 == 0 else p.mod_v
        fed = b if encrypt else a
        num = b"".join(int(z).to_bytes(p.b, "big") for z in fed)
        suffix[:, i_at] = i
        suffix[:, i_at + 1 :] = np.frombuffer(num, dtype=np.uint8).reshape(rows, p.b)
        state = state0
        for blk in range(suffix.shape[1] // 16):
            state = _ecb_rows(ecb, state ^ suffix[:, 16 * blk : 16 * blk + 16])
        if extra:
            more = _ecb_rows(ecb, (state[:, None, :] ^ counters[None, :, :]).reshape(-1, 16))
            s = np.concatenate([state, more.reshape(rows, 16 * extra)], axis=1)
        else:
            s = state
        raw = np.ascontiguousarray(s[:, : p.d]).tobytes()
        d = p.d
        y = np.array(
            [int.from_bytes(raw[r * d : (r + 1) * d], "big") for r in range(rows)], dtype=object
        )
        if encrypt:
            a, b = b, (a + y) % m
        else:
            a, b = (b - y) % m, a
    res = np.empty((rows, p.n), dtype=np.uint16)
    res[:, : p.u] = _str_wide(a, p.radix, p.u)
    res[:, p.u :] = _str_wide(b, p.radix, p.v)
    return res


# ---------------------------------------------------------------------------------------
# Alphabets and the string API
# ---------------------------------------------------------------------------------------


class Alphabet:
    """The numerals of a radix, in order: ``Alphabet("0123456789")`` is radix 10."""

    def __init__(self, chars: str) -> None:
        if len(set(chars)) != len(chars):
            raise FF1DomainError("an FF1 alphabet must not repeat characters")
        check_radix(len(chars))
        self.chars = chars
        self.radix = len(chars)
        self.ascii = chars.isascii()
        codes = np.array([ord(c) for c in chars], dtype=np.int64)
        self._codes = codes
        # At least 256 entries, so bytes index the table directly.
        size = max(256, int(codes.max()) + 1)
        #: Code point -> numeral, -1 outside the alphabet (code points beyond the table too).
        self.lookup = np.full(size, -1, dtype=np.int32)
        self.lookup[codes] = np.arange(self.radix, dtype=np.int32)

    def __repr__(self) -> str:
        return f"Alphabet(radix={self.radix})"

    def numerals_of(self, codes: NDArray[Any]) -> NDArray[np.int32]:
        """Numeral of each code point, -1 where it is not in the alphabet."""
        codes = np.asarray(codes)
        if codes.dtype == np.uint8:
            return np.take(self.lookup, codes)
        codes = codes.astype(np.int64, copy=False)
        inside = codes < self.lookup.shape[0]
        return np.where(inside, self.lookup[np.where(inside, codes, 0)], -1).astype(np.int32)

    def chars_of(self, numerals: NDArray[Any]) -> NDArray[Any]:
        """Code point of each numeral (``uint8`` for an ASCII alphabet)."""
        table = self._codes.astype(np.uint8) if self.ascii else self._codes
        return np.take(table, np.asarray(numerals))


def code_points(values: Sequence[str]) -> tuple[NDArray[Any], NDArray[np.int64]]:
    """All characters of ``values`` as one flat array of code points (``uint8`` when all are
    ASCII, else ``int64``), and each value's length."""
    lengths = np.fromiter(map(len, values), dtype=np.int64, count=len(values))
    joined = "".join(values)
    if joined.isascii():
        flat: NDArray[Any] = np.frombuffer(joined.encode("ascii"), dtype=np.uint8)
    else:
        flat = np.frombuffer(joined.encode("utf-32-le"), dtype="<u4").astype(np.int64)
    return flat, lengths


def strings_of(codes: NDArray[Any], lengths: NDArray[Any]) -> list[str]:
    """The inverse of ``code_points``."""
    codes = np.asarray(codes)
    if codes.dtype == np.uint8 or (codes.size and int(codes.max()) < 128):
        text = codes.astype(np.uint8, copy=False).tobytes().decode("ascii")
    else:
        text = codes.astype("<u4").tobytes().decode("utf-32-le")
    ends = np.cumsum(lengths).tolist()
    starts = [0, *ends[:-1]] if ends else []
    return [text[s:e] for s, e in zip(starts, ends, strict=True)]


def _crypt_strings(
    key: bytes, tweak: bytes, values: Sequence[str], alphabet: str, encrypt: bool
) -> list[str]:
    alpha = Alphabet(alphabet)
    codes, lengths = code_points(values)
    numerals = alpha.numerals_of(codes)
    if numerals.size and int(numerals.min()) < 0:
        bad = np.repeat(np.arange(lengths.size), lengths)[numerals < 0]
        raise FF1DomainError(
            f"value #{int(bad[0])} has characters outside the alphabet "
            f"({int(np.unique(bad).size)} value(s) in all)"
        )
    for n in np.unique(lengths).tolist():
        check_domain(alpha.radix, int(n))
    cipher = FF1(key)
    crypt = cipher.encrypt_ragged if encrypt else cipher.decrypt_ragged
    return strings_of(alpha.chars_of(crypt(numerals, lengths, alpha.radix, tweak)), lengths)


def encrypt(key: bytes, tweak: bytes, values: Sequence[str], alphabet: str) -> list[str]:
    """FF1.Encrypt of each value (a whole string over ``alphabet``) under one AES key and
    one tweak. Raises ``FF1DomainError`` for characters outside the alphabet or a length
    below the minimum domain."""
    return _crypt_strings(key, tweak, values, alphabet, True)


def decrypt(key: bytes, tweak: bytes, values: Sequence[str], alphabet: str) -> list[str]:
    """FF1.Decrypt of each value; the inverse of ``encrypt``."""
    return _crypt_strings(key, tweak, values, alphabet, False)
