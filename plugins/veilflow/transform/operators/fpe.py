"""The ``ff1`` operator: format-preserving encryption of a column with FF1 (NIST SP 800-38G).

A value keeps its length and its layout: characters of the configured alphabet are encrypted
(as one FF1 numeral string per value), separators stay where they are
(``4111-1111-1111-1111`` keeps its dashes), ``keep_first``/``keep_last`` alphabet characters
stay clear, ``email: true`` encrypts the local part and keeps ``@domain``.

Tweak. Every value of a column is encrypted under the data key of purpose ``ff1`` (the
32-byte material is an AES-256 key) and the tweak

* ``SHA-256(b"veilflow-ff1\\0" + dataset + b"\\0" + column)[:8]`` (names as UTF-8), or,
  with ``context_column``,
* ``SHA-256(b"veilflow-ff1\\0" + dataset + b"\\0" + column + b"\\0" + flag + context)[:16]``
  where ``flag`` is ``b"\\1"`` and ``context`` the context value's text form (``str()``) as
  UTF-8, or ``flag`` is ``b"\\0"`` and ``context`` empty when the context value is NULL.

So equal values in one column encrypt equally (joins on the column survive within a dataset)
unless a context column sets them apart.

Luhn. With ``luhn: true`` (digits only) the output is a Luhn-valid number: the last digit
that is not kept clear (the check digit itself when ``keep_last`` is 0) is not encrypted but
recomputed so the whole number passes the Luhn check; every other non-kept digit is
encrypted. Decryption decrypts the same digits and recomputes that digit again, which
restores the input exactly because inputs must be Luhn-valid (values failing the Luhn check
are invalid, below).

Invalid values: characters outside both the alphabet and ``separators``, fewer encryptable
characters (alphabet characters minus ``keep_first``, ``keep_last`` and the Luhn digit) than
FF1's minimum domain allows (``radix**n >= 1,000,000``: 6 digits, 4 base-36 characters), a
failed Luhn check with ``luhn``, no ``@`` with ``email``. ``on_invalid: token`` replaces such
a value (the local part with ``email``) with the deterministic readable token
``tok_v<version>_<26 base32 chars>`` (the first 128 bits of HMAC-SHA256 of the UTF-8 value
under the ``token`` data key, the ``tokenize`` operator's readable form); ``on_invalid: fail``
raises ``TransformError`` naming the column and the rows by snapshot ordinal (never key or
value). Both count per reason in the chunk's counters. NULL stays NULL.

What decryption can detect (``decrypt_values``). FF1 is a keyed permutation of each length's
numeral strings: every well-formed ciphertext decrypts to *some* plaintext under *any* key and
tweak, so a wrong key, a wrong tweak (dataset, column or context) or a digit changed inside
the encrypted part cannot be detected and yields a wrong value silently. Detected, and
raised as ``TransformError``: characters outside the alphabet and separators, too few
encryptable characters, a missing ``@`` with ``email``, and with ``luhn`` any ciphertext that
fails the Luhn check (every single-digit change and most transpositions). Fallback tokens are
one-way: ``decrypt_values`` returns them unchanged and counts them as ``not_reversible``.
"""

from __future__ import annotations

import hashlib
from typing import Any, ClassVar

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from numpy.typing import NDArray

from veilflow.errors import TransformError
from veilflow.policy.operators import FF1Config
from veilflow.transform import ff1
from veilflow.transform.base import STRING, ChunkContext, Operator
from veilflow.transform.checksums import LUHN_UNDOUBLE, luhn_matrix_sums, luhn_position_sums
from veilflow.transform.keys import DataKey
from veilflow.transform.operators.fpe_layout import (
    REASONS,
    Layout,
    codes_of,
    reason_code,
    set_columns,
    take_columns,
)
from veilflow.transform.operators.tokenize import readable_token_pattern, tokenize_strings

_TWEAK_LABEL = b"veilflow-ff1\0"


#: Rows per slice inside ``apply``: keeps the per-character arrays in cache and the memory
#: of a large chunk bounded.
SLICE_ROWS = 65536


class FF1Encrypt(Operator[FF1Config]):
    """FF1 format-preserving encryption; reversible by whoever holds the ``ff1`` data key."""

    name: ClassVar[str] = "ff1"
    Config = FF1Config
    key_purpose = "ff1"
    gdpr = "pseudonymous"
    gdpr_reason = "format-preserving encryption; reversible with the data key"
    masking = True
    lineage_subtype = "TRANSFORMATION"

    # -- public -------------------------------------------------------------------------

    def apply(self, values: pd.Series, chunk: ChunkContext) -> pd.Series:
        return self._run(values, chunk, encrypt=True)

    def decrypt_values(
        self, values: pd.Series, chunk: ChunkContext, key_version: int | None = None
    ) -> pd.Series:
        """Authorized re-identification: the inverse of ``apply`` (the vault decides who may
        call it). A ciphertext does not say which key version made it (it keeps the format),
        so values encrypted before a rotation need ``key_version`` from the run's manifest
        or lineage (``describe()`` records the key ref); the active version otherwise.
        Raises ``TransformError`` for values that cannot be ciphertexts of this operator;
        see the module docstring for what cannot be detected."""
        key = (
            self.key
            if key_version is None
            else self.column.keys.data_key(self.column.dataset, "ff1", key_version)
        )
        return self._run(values, chunk, encrypt=False, key=key)

    # -- tweak --------------------------------------------------------------------------

    def _prefix(self) -> bytes:
        return _TWEAK_LABEL + self.column.dataset.encode() + b"\0" + self.column.column.encode()

    def column_tweak(self) -> bytes:
        """The tweak of every value when no context column is configured."""
        return hashlib.sha256(self._prefix()).digest()[:8]

    def context_tweaks(self, context: pd.Series) -> NDArray[np.uint8]:
        """One 16-byte tweak per context value (hashed once per distinct value)."""
        codes, uniques = pd.factorize(context, use_na_sentinel=True)
        prefix = self._prefix() + b"\0"
        table = np.frombuffer(
            b"".join(
                hashlib.sha256(prefix + b"\1" + str(u).encode()).digest()[:16] for u in uniques
            )
            + hashlib.sha256(prefix + b"\0").digest()[:16],
            dtype=np.uint8,
        ).reshape(-1, 16)
        # Sentinel -1 (NULL) picks the last row, the NULL tweak.
        return table[codes]

    # -- machinery ----------------------------------------------------------------------

    def _layout(self, arr: Any) -> Layout:
        cfg = self.config
        alphabet = ff1.Alphabet(cfg.characters)
        codes, lengths, ascii_only = codes_of(arr)
        rows = lengths.size
        numerals = alphabet.numerals_of(codes)
        is_num = numerals >= 0
        if cfg.separators is None:
            is_sep = ~is_num
        elif codes.dtype == np.uint8:
            table = np.zeros(256, dtype=bool)
            table[[ord(c) for c in cfg.separators if ord(c) < 256]] = True
            is_sep = ~is_num & table[codes]
        else:
            seps = np.array([ord(c) for c in cfg.separators], dtype=np.int64)
            is_sep = ~is_num & np.isin(codes, seps)
        reason = np.zeros(rows, dtype=np.int8)
        width = int(lengths[0]) if rows and bool((lengths == lengths[0]).all()) else 0
        row_of: NDArray[np.int32] | None = None
        if cfg.email:
            row_of = np.repeat(np.arange(rows, dtype=np.int32), lengths)
            at = np.flatnonzero(codes == ord("@"))
            last_at = np.full(rows, -1, dtype=np.int64)
            if at.size:
                at_rows = row_of[at]
                is_last = np.r_[at_rows[1:] != at_rows[:-1], True]
                last_at[at_rows[is_last]] = at[is_last]
            domain = (last_at[row_of] >= 0) & (np.arange(codes.size) >= last_at[row_of])
            is_num &= ~domain
            is_sep |= domain
            reason[last_at < 0] = reason_code("no_at_sign")
        other = ~is_num & ~is_sep
        if width:
            bad = other.reshape(rows, width).any(axis=1)
            n_alpha = is_num.reshape(rows, width).sum(axis=1, dtype=np.int32)
        else:
            if row_of is None:
                row_of = np.repeat(np.arange(rows, dtype=np.int32), lengths)
            bad = np.bincount(row_of[other], minlength=rows) > 0
            n_alpha = np.bincount(row_of[is_num], minlength=rows).astype(np.int32)
        reason[(reason == 0) & bad] = reason_code("invalid_characters")
        n_enc = n_alpha - cfg.keep_first - cfg.keep_last - int(cfg.luhn)
        short = n_enc < ff1.min_length(alphabet.radix)
        reason[(reason == 0) & short] = reason_code("below_minimum_domain")
        lay = Layout(
            codes=codes,
            lengths=lengths,
            ascii=ascii_only,
            numerals=numerals,
            is_num=is_num,
            n_alpha=n_alpha,
            reason=reason,
            width=width,
        )
        if row_of is not None:
            lay.row_of = row_of
        return lay

    def _run(
        self, values: pd.Series, chunk: ChunkContext, *, encrypt: bool, key: DataKey | None = None
    ) -> pd.Series:
        key = key if key is not None else self.key
        if key is None:  # pragma: no cover - key_purpose is set
            raise TransformError(f"column {self.column.column!r}: no ff1 data key")
        out = pd.Series(pd.NA, index=values.index, dtype=STRING)
        present = values.notna().to_numpy(dtype=bool)
        if not present.any():
            return out
        arr = pa.array(values.array, type=pa.large_string())
        if isinstance(arr, pa.ChunkedArray):
            arr = arr.combine_chunks()
        arr = arr.filter(pa.array(present))
        positions = np.flatnonzero(present)
        parts: list[pd.Series] = []
        tweaks = self._tweaks(values, present, chunk)
        for lo in range(0, len(arr), SLICE_ROWS):
            hi = min(len(arr), lo + SLICE_ROWS)
            tweak = tweaks if isinstance(tweaks, bytes) else tweaks[lo:hi]
            parts.append(
                self._run_slice(
                    arr.slice(lo, hi - lo),
                    tweak,
                    values,
                    positions[lo:hi],
                    chunk,
                    key,
                    encrypt=encrypt,
                )
            )
        done = parts[0] if len(parts) == 1 else pd.concat(parts, ignore_index=True)
        out[present] = done.array
        return out

    def _tweaks(
        self, values: pd.Series, present: NDArray[np.bool_], chunk: ChunkContext
    ) -> ff1.Tweak:
        """The column tweak, or one tweak per non-NULL value with a context column."""
        cfg = self.config
        if cfg.context_column is None:
            return self.column_tweak()
        if cfg.context_column not in chunk.frame.columns:
            raise TransformError(
                f"column {self.column.column!r}: context column "
                f"{cfg.context_column!r} is not in the chunk"
            )
        context = chunk.frame[cfg.context_column].reindex(values.index)[present]
        return self.context_tweaks(context.reset_index(drop=True))

    def _run_slice(
        self,
        arr: Any,
        tweak: ff1.Tweak,
        values: pd.Series,
        positions: NDArray[np.int64],
        chunk: ChunkContext,
        key: DataKey,
        *,
        encrypt: bool,
    ) -> pd.Series:
        cfg = self.config
        column = self.column.column
        lay = self._layout(arr)

        tokens = np.zeros(lay.rows, dtype=bool)
        if not encrypt:
            token_re = readable_token_pattern() + ("(@|$)" if cfg.email else "$")
            tokens = (
                pc.match_substring_regex(arr, token_re).to_numpy(zero_copy_only=False).astype(bool)
            )
            lay.reason[tokens] = 0
        candidates = (lay.reason == 0) & ~tokens
        pattern = lay.pattern(candidates)
        if cfg.luhn:
            failed = candidates & ~lay.luhn_valid(pattern)
            lay.reason[failed] = reason_code("luhn_invalid")
        invalid = lay.reason != 0
        if invalid.any():
            self._invalid(values, positions[invalid], lay.reason[invalid], chunk, encrypt=encrypt)

        ok = ~invalid & ~tokens
        codes = lay.codes.copy()
        if ok.any():
            row_tweak = tweak if isinstance(tweak, bytes) else tweak[ok]
            try:
                if pattern is not None:
                    codes = self._crypt_uniform(
                        lay, codes, ok, pattern, key.material, row_tweak, encrypt=encrypt
                    )
                else:
                    codes = self._crypt_ragged(
                        lay, codes, ok, key.material, row_tweak, encrypt=encrypt
                    )
            except ff1.FF1DomainError as err:  # pragma: no cover - values are screened above
                raise ff1.FF1DomainError(str(err), column=column) from None

        done = self._strings(codes, lay)
        if tokens.any():
            chunk.count(column, "not_reversible", int(tokens.sum()))
        if invalid.any():
            text = pd.Series(arr.filter(pa.array(invalid)).to_pylist(), dtype=object)
            done[invalid] = self._fallback(text)
        return done

    def _alphabet_codes(self) -> NDArray[Any]:
        chars = self.config.characters
        return np.array([ord(c) for c in chars], dtype=np.uint8 if chars.isascii() else np.int64)

    def _crypt_uniform(
        self,
        lay: Layout,
        codes: NDArray[Any],
        ok: NDArray[np.bool_],
        pattern: NDArray[np.bool_],
        key: bytes,
        tweak: ff1.Tweak,
        *,
        encrypt: bool,
    ) -> NDArray[Any]:
        cfg = self.config
        places = np.flatnonzero(pattern)
        stop = places.size - cfg.keep_last - int(cfg.luhn)
        chosen = places[cfg.keep_first : stop]
        all_ok = bool(ok.all())
        digits = lay.numerals.reshape(lay.rows, lay.width)
        if not all_ok:
            digits = digits[ok]
        cipher = ff1.FF1(key)
        crypt = cipher.encrypt_numerals if encrypt else cipher.decrypt_numerals
        enc = crypt(take_columns(digits, chosen), len(cfg.characters), tweak)
        alphabet = self._alphabet_codes()
        if alphabet.dtype != codes.dtype:
            codes = codes.astype(np.int64)
        grid = codes.reshape(lay.rows, lay.width)
        block = grid if all_ok else grid[ok]
        set_columns(block, chosen, alphabet[enc])
        if cfg.luhn:
            # All digits in order, with the encrypted (or decrypted) ones in place.
            full = take_columns(digits, places).astype(np.uint8)
            full[:, cfg.keep_first : stop] = enc
            full[:, stop] = 0  # the digit to solve for contributes nothing yet
            need = (-luhn_matrix_sums(full)) % 10
            doubled = (places.size - 1 - stop) % 2 == 1
            fix = LUHN_UNDOUBLE[need] if doubled else need
            block[:, places[stop]] = alphabet[fix]
        if not all_ok:
            grid[ok] = block
        return grid.reshape(-1)

    def _crypt_ragged(
        self,
        lay: Layout,
        codes: NDArray[Any],
        ok: NDArray[np.bool_],
        key: bytes,
        tweak: ff1.Tweak,
        *,
        encrypt: bool,
    ) -> NDArray[Any]:
        cfg = self.config
        digits = lay.numerals
        row_ok = ok[lay.row_of]
        top = lay.n_alpha[lay.row_of] - (cfg.keep_last + int(cfg.luhn))
        chosen = lay.is_num & row_ok & (lay.rank < top)
        if cfg.keep_first:
            chosen &= lay.rank >= cfg.keep_first
        lengths = np.bincount(lay.row_of[chosen], minlength=lay.rows)[ok]
        cipher = ff1.FF1(key)
        crypt = cipher.encrypt_ragged if encrypt else cipher.decrypt_ragged
        new_digits = digits.astype(np.int64)
        new_digits[chosen] = crypt(digits[chosen], lengths, len(cfg.characters), tweak)
        changed = chosen
        if cfg.luhn:
            adjust = lay.is_num & row_ok & (lay.rank == top)
            others = lay.is_num & row_ok & ~adjust
            from_right = lay.n_alpha[lay.row_of] - 1 - lay.rank
            sums = luhn_position_sums(
                new_digits[others], from_right[others], lay.row_of[others], lay.rows
            )
            need = (-sums[lay.row_of[adjust]]) % 10
            new_digits[adjust] = np.where(from_right[adjust] % 2 == 1, LUHN_UNDOUBLE[need], need)
            changed = chosen | adjust
        alphabet = self._alphabet_codes()
        if alphabet.dtype != codes.dtype:
            codes = codes.astype(np.int64)
        codes[changed] = alphabet[new_digits[changed]]
        return codes

    @staticmethod
    def _strings(codes: NDArray[Any], lay: Layout) -> pd.Series:
        if codes.dtype == np.uint8:
            offsets = np.zeros(lay.rows + 1, dtype=np.int64)
            np.cumsum(lay.lengths, out=offsets[1:])
            arr = pa.Array.from_buffers(
                pa.large_string(),
                lay.rows,
                [None, pa.py_buffer(offsets.tobytes()), pa.py_buffer(codes.tobytes())],
            )
            return pd.Series(pd.array(arr, dtype=STRING))
        return pd.Series(ff1.strings_of(codes, lay.lengths), dtype=STRING)

    def _invalid(
        self,
        values: pd.Series,
        positions: NDArray[np.int64],
        reasons: NDArray[np.int8],
        chunk: ChunkContext,
        *,
        encrypt: bool,
    ) -> None:
        """Count invalid values per reason; raise unless they fall back to tokens."""
        column = self.column.column
        counts = {
            REASONS[code - 1]: int(n)
            for code, n in zip(*np.unique(reasons, return_counts=True), strict=True)
        }
        for reason, n in counts.items():
            chunk.count(column, reason, n)
        total = int(reasons.size)
        if encrypt and self.config.on_invalid == "token":
            chunk.count(column, "fallback_token", total)
            return
        mask = np.zeros(len(values), dtype=bool)
        mask[positions] = True
        summary = ", ".join(f"{n} {r.replace('_', ' ')}" for r, n in counts.items())
        if encrypt:
            chunk.count(column, "invalid", total)
            what = "cannot be FF1-encrypted"
        else:
            chunk.count(column, "not_decryptable", total)
            what = "are not ciphertexts of this ff1 configuration (tampered or foreign)"
        raise TransformError(
            f"column {column!r}: {total} value(s) {what} ({summary}); at {chunk.row_refs(mask)}"
        )

    def _fallback(self, text: pd.Series) -> list[str]:
        """HMAC tokens (the ``tokenize`` operator's form) for values FF1 cannot take; an
        email keeps its domain."""
        token_key = self.column.keys.data_key(self.column.dataset, "token")
        raw: list[str] = text.tolist()
        if self.config.email:
            parts = [v.rpartition("@") for v in raw]
            heads = [p[0] if p[1] else v for p, v in zip(parts, raw, strict=True)]
            tails = [p[1] + p[2] if p[1] else "" for p in parts]
        else:
            heads, tails = raw, [""] * len(raw)
        tokens = tokenize_strings(heads, token_key)
        return [f"{token}{tail}" for token, tail in zip(tokens, tails, strict=True)]
