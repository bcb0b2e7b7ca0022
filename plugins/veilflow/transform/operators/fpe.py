"""The ``ff1`` operator: format-preserving encryption of a column with FF1 (NIST SP 800-38G).

A value keeps its length and its layout: characters of the configured alphabet are encrypted
(as one FF1 numeral string per value), separators stay where they are
(``4111-1111-1111-1111`` keeps its dashes), ``keep_first``/``keep_last`` alphabet characters
stay clear, ``email: true`` encrypts the local part and keeps ``@domain``.

Tweak. Every value of a column is encrypted under the data key of purpose ``ff1`` (the
32-byte material is an AES-256 key) and the tweak

* ``SHA-256(b"veilflow-ff1\\0" + dataset + b"\\0" + column)[:8]`` (UTF-8), or, with
  ``context_column``,
* ``SHA-256(b"veilflow-ff1\\0" + dataset + b"\\0" + column + b"\\0" + flag + context)[:16]``
  where ``flag`` is ``b"\\1"`` and ``context`` the UTF-8 context value, or ``flag`` is
  ``b"\\0"`` and ``context`` empty when the context value is NULL.

So equal values in one column encrypt equally (joins on the column survive within a dataset)
unless a context column sets them apart.

Luhn. With ``luhn: true`` (digits only) the output is a Luhn-valid number: the last digit
that is not kept clear (the check digit itself when ``keep_last`` is 0) is not encrypted but
recomputed so the whole number passes the Luhn check; every other non-kept digit is
encrypted. Decryption decrypts the same digits and recomputes that digit again, which
restores the input exactly because inputs must be Luhn-valid (values failing the Luhn check
are invalid, below).

Invalid values: characters outside both the alphabet and ``separators``, fewer encryptable
characters than FF1's minimum domain allows (``radix**n >= 1,000,000``: 6 digits, 4 base-36
characters), a failed Luhn check with ``luhn``, no ``@`` with ``email``. ``on_invalid: token``
replaces such a value (the local part with ``email``) with the deterministic readable token
``tok_v<version>_<26 base32 chars>`` (the first 128 bits of HMAC-SHA256 of the UTF-8 value
under the ``token`` data key, the ``tokenize`` operator's readable form); ``on_invalid: fail`` raises
``TransformError`` naming the column and row keys. Both count per reason in the chunk's
counters. NULL stays NULL.

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

import base64
import hashlib
import hmac
from dataclasses import dataclass
from typing import ClassVar, Literal

import numpy as np
import pandas as pd
import pyarrow as pa  # type: ignore[import-untyped]
import pyarrow.compute as pc  # type: ignore[import-untyped]
from numpy.typing import NDArray
from pydantic import Field, field_validator, model_validator

from veilflow.errors import TransformError
from veilflow.transform import ff1
from veilflow.transform.base import STRING, ChunkContext, Operator, OperatorConfig

_DIGITS = "0123456789"
_LOWER = "abcdefghijklmnopqrstuvwxyz"
_UPPER = _LOWER.upper()

#: Named alphabets; any other string is a custom alphabet listing the radix's characters.
ALPHABETS = {
    "digits": _DIGITS,
    "hex": _DIGITS + "abcdef",
    "lower_alnum": _DIGITS + _LOWER,
    "upper_alnum": _DIGITS + _UPPER,
    "alnum": _DIGITS + _UPPER + _LOWER,
}

#: Luhn contribution of a digit at a doubled position, and its inverse.
_LUHN_DOUBLE = np.array([0, 2, 4, 6, 8, 1, 3, 5, 7, 9], dtype=np.int64)
_LUHN_UNDOUBLE = np.argsort(_LUHN_DOUBLE)

_TOKEN_RE = r"^tok_v[0-9]+_[a-z2-7]{26}"
_TWEAK_LABEL = b"veilflow-ff1\0"

#: Why a value could not be encrypted; counter names in the chunk's counters.
_REASONS = ("invalid_characters", "below_minimum_domain", "luhn_invalid", "no_at_sign")


class FF1Config(OperatorConfig):
    #: ``digits``, ``hex`` (lowercase), ``lower_alnum``, ``upper_alnum``, ``alnum`` or a
    #: custom string listing the characters in numeral order (a named alphabet wins).
    alphabet: str = "digits"
    #: Characters that stay in place; any other character outside the alphabet makes a value
    #: invalid. ``null``: every character outside the alphabet stays in place.
    separators: str | None = " -./()+_:"
    keep_first: int = Field(default=0, ge=0)
    keep_last: int = Field(default=0, ge=0)
    #: Luhn-valid output for card numbers (digits only; see the module docstring).
    luhn: bool = False
    #: Encrypt the local part of an email address and keep ``@domain``.
    email: bool = False
    #: A column of the same table whose value joins the tweak.
    context_column: str | None = None
    on_invalid: Literal["token", "fail"] = "token"

    @field_validator("alphabet")
    @classmethod
    def _known_or_valid(cls, value: str) -> str:
        chars = ALPHABETS.get(value, value)
        if len(chars) < 2 or len(set(chars)) != len(chars) or len(chars) > ff1.MAX_RADIX:
            raise ValueError("a custom alphabet needs 2 to 65536 distinct characters")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> FF1Config:
        if self.luhn and self.characters != _DIGITS:
            raise ValueError("luhn needs alphabet 'digits'")
        if self.luhn and self.email:
            raise ValueError("luhn and email exclude each other")
        return self

    @property
    def characters(self) -> str:
        return ALPHABETS.get(self.alphabet, self.alphabet)


@dataclass
class _Layout:
    """Where each value's characters go: one flat array over all characters of the non-NULL
    values, row by row."""

    codes: NDArray[np.int64]
    lengths: NDArray[np.int64]
    ascii: bool
    numerals: NDArray[np.int32]
    #: Alphabet characters (outside an email's domain).
    is_num: NDArray[np.bool_]
    #: 0-based rank of each alphabet character within its value.
    rank: NDArray[np.int64]
    row_of: NDArray[np.int64]
    n_alpha: NDArray[np.int64]
    #: Per value: the reason it cannot be encrypted, or "" when it can.
    reason: NDArray[np.object_]

    @property
    def rows(self) -> int:
        return int(self.lengths.size)


def _codes_of(values: pd.Series) -> tuple[NDArray[np.int64], NDArray[np.int64], bool]:
    """Code points of all characters (flat) and each value's length. ASCII data is read
    straight from the Arrow buffers."""
    arr = pa.array(values.array, type=pa.large_string())
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    n = len(arr)
    if n and pc.all(pc.string_is_ascii(arr)).as_py():
        offsets = np.frombuffer(arr.buffers()[1], dtype=np.int64)[arr.offset:arr.offset + n + 1]
        data_buf = arr.buffers()[2]
        data = (np.frombuffer(data_buf, dtype=np.uint8) if data_buf is not None
                else np.empty(0, dtype=np.uint8))
        flat = data[offsets[0]:offsets[-1]].astype(np.int64)
        return flat, np.diff(offsets), True
    codes, lengths = ff1.code_points(arr.to_pylist())
    return codes, lengths, bool(codes.size == 0 or codes.max() < 128)


def _luhn_sums(digits: NDArray[np.int64], from_right: NDArray[np.int64],
               row_of: NDArray[np.int64], rows: int) -> NDArray[np.int64]:
    """Luhn sum of each row over the given digits (position counted from the right)."""
    contrib = np.where(from_right % 2 == 1, _LUHN_DOUBLE[digits], digits)
    return np.bincount(row_of, weights=contrib, minlength=rows).astype(np.int64)


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

    def decrypt_values(self, values: pd.Series, chunk: ChunkContext) -> pd.Series:
        """Authorized re-identification: the inverse of ``apply`` (the vault decides who may
        call it). Raises ``TransformError`` for values that cannot be ciphertexts of this
        operator; see the module docstring for what cannot be detected."""
        return self._run(values, chunk, encrypt=False)

    # -- tweak --------------------------------------------------------------------------

    def _prefix(self) -> bytes:
        return (_TWEAK_LABEL + self.column.dataset.encode() + b"\0"
                + self.column.column.encode())

    def column_tweak(self) -> bytes:
        """The tweak of every value when no context column is configured."""
        return hashlib.sha256(self._prefix()).digest()[:8]

    def context_tweaks(self, context: pd.Series) -> NDArray[np.uint8]:
        """One 16-byte tweak per context value (hashed once per distinct value)."""
        codes, uniques = pd.factorize(context, use_na_sentinel=True)
        prefix = self._prefix() + b"\0"
        table = np.frombuffer(b"".join(
            hashlib.sha256(prefix + b"\1" + str(u).encode()).digest()[:16] for u in uniques
        ) + hashlib.sha256(prefix + b"\0").digest()[:16], dtype=np.uint8).reshape(-1, 16)
        # Sentinel -1 (NULL) picks the last row, the NULL tweak.
        return table[codes]

    # -- machinery ----------------------------------------------------------------------

    def _layout(self, values: pd.Series) -> _Layout:
        cfg = self.config
        alphabet = ff1.Alphabet(cfg.characters)
        codes, lengths, ascii_only = _codes_of(values)
        rows = lengths.size
        row_of = np.repeat(np.arange(rows, dtype=np.int64), lengths)
        numerals = alphabet.numerals_of(codes)
        is_num = numerals >= 0
        if cfg.separators is None:
            is_sep = ~is_num
        else:
            seps = np.array([ord(c) for c in cfg.separators], dtype=np.int64)
            is_sep = ~is_num & np.isin(codes, seps)
        reason = np.full(rows, "", dtype=object)
        if cfg.email:
            at = np.flatnonzero(codes == ord("@"))
            last_at = np.full(rows, -1, dtype=np.int64)
            if at.size:
                at_rows = row_of[at]
                is_last = np.r_[at_rows[1:] != at_rows[:-1], True]
                last_at[at_rows[is_last]] = at[is_last]
            domain = (last_at[row_of] >= 0) & (np.arange(codes.size) >= last_at[row_of])
            is_num &= ~domain
            is_sep |= domain
            reason[last_at < 0] = "no_at_sign"
        bad = np.bincount(row_of, weights=~is_num & ~is_sep, minlength=rows) > 0
        reason[(reason == "") & bad] = "invalid_characters"
        n_alpha = np.bincount(row_of, weights=is_num, minlength=rows).astype(np.int64)
        before = np.zeros(rows, dtype=np.int64)
        np.cumsum(n_alpha[:-1], out=before[1:])
        rank = np.cumsum(is_num) - 1 - before[row_of]
        n_enc = n_alpha - cfg.keep_first - cfg.keep_last - int(cfg.luhn)
        short = n_enc < ff1.min_length(alphabet.radix)
        reason[(reason == "") & short] = "below_minimum_domain"
        return _Layout(codes=codes, lengths=lengths, ascii=ascii_only, numerals=numerals,
                       is_num=is_num, rank=rank, row_of=row_of, n_alpha=n_alpha,
                       reason=reason)

    def _luhn_check(self, lay: _Layout, digits: NDArray[np.int64]) -> NDArray[np.bool_]:
        """Per row: do its digits pass the Luhn check?"""
        where = lay.is_num
        from_right = lay.n_alpha[lay.row_of[where]] - 1 - lay.rank[where]
        sums = _luhn_sums(digits[where], from_right, lay.row_of[where], lay.rows)
        return np.asarray(sums % 10 == 0)

    def _run(self, values: pd.Series, chunk: ChunkContext, *, encrypt: bool) -> pd.Series:
        cfg = self.config
        column = self.column.column
        key = self.key
        if key is None:  # pragma: no cover - key_purpose is set
            raise TransformError(f"column {column!r}: no ff1 data key")
        out = pd.Series(pd.NA, index=values.index, dtype=STRING)
        present = values.notna().to_numpy(dtype=bool)
        if not present.any():
            return out
        text = values[present].astype(STRING)
        lay = self._layout(text)
        digits = lay.numerals.astype(np.int64)

        tokens = np.zeros(lay.rows, dtype=bool)
        if not encrypt:
            pattern = _TOKEN_RE + ("(@|$)" if cfg.email else "$")
            tokens = pc.match_substring_regex(
                pa.array(text.array, type=pa.large_string()), pattern
            ).to_numpy(zero_copy_only=False).astype(bool)
            lay.reason[tokens] = ""
        if cfg.luhn:
            failed = (lay.reason == "") & ~tokens & ~self._luhn_check(lay, digits)
            lay.reason[failed] = "luhn_invalid"
        invalid = lay.reason != ""

        if invalid.any():
            self._invalid(values, present, text, lay, invalid, chunk, encrypt=encrypt)

        ok = ~invalid & ~tokens
        row_ok = ok[lay.row_of]
        top = lay.n_alpha[lay.row_of] - cfg.keep_last - int(cfg.luhn)
        chosen = lay.is_num & row_ok & (lay.rank >= cfg.keep_first) & (lay.rank < top)
        new_digits = digits.copy()
        if ok.any():
            lengths = np.bincount(lay.row_of[chosen], minlength=lay.rows)[ok]
            tweak: ff1.Tweak
            if cfg.context_column is None:
                tweak = self.column_tweak()
            else:
                if cfg.context_column not in chunk.frame.columns:
                    raise TransformError(f"column {column!r}: context column "
                                         f"{cfg.context_column!r} is not in the chunk")
                context = chunk.frame[cfg.context_column].reindex(values.index)[present]
                tweak = self.context_tweaks(context.reset_index(drop=True))[ok]
            cipher = ff1.FF1(key.material)
            radix = len(cfg.characters)
            crypt = cipher.encrypt_ragged if encrypt else cipher.decrypt_ragged
            new_digits[chosen] = crypt(digits[chosen], lengths, radix, tweak)
        changed = chosen
        if cfg.luhn and ok.any():
            adjust = lay.is_num & row_ok & (lay.rank == top)
            others = lay.is_num & row_ok & ~adjust
            from_right = lay.n_alpha[lay.row_of] - 1 - lay.rank
            sums = _luhn_sums(new_digits[others], from_right[others], lay.row_of[others],
                              lay.rows)
            need = (-sums[lay.row_of[adjust]]) % 10
            new_digits[adjust] = np.where(from_right[adjust] % 2 == 1,
                                          _LUHN_UNDOUBLE[need], need)
            changed = chosen | adjust
        codes = lay.codes.copy()
        alphabet_codes = np.array([ord(c) for c in cfg.characters], dtype=np.int64)
        codes[changed] = alphabet_codes[new_digits[changed]]

        result = self._strings(codes, lay, ascii_out=lay.ascii and cfg.characters.isascii())
        done = pd.Series(result.array, index=text.index, dtype=STRING)
        if tokens.any():
            done[tokens] = text[tokens]
            chunk.count(column, "not_reversible", int(tokens.sum()))
        if invalid.any():
            done[invalid] = self._fallback(text[invalid], chunk)
        out[present] = done.array
        return out

    @staticmethod
    def _strings(codes: NDArray[np.int64], lay: _Layout, *, ascii_out: bool) -> pd.Series:
        if ascii_out:
            offsets = np.zeros(lay.rows + 1, dtype=np.int64)
            np.cumsum(lay.lengths, out=offsets[1:])
            arr = pa.Array.from_buffers(pa.large_string(), lay.rows, [
                None, pa.py_buffer(offsets.tobytes()),
                pa.py_buffer(codes.astype(np.uint8).tobytes())])
            return pd.Series(pd.array(arr, dtype=STRING))
        return pd.Series(ff1.strings_of(codes, lay.lengths), dtype=STRING)

    def _invalid(self, values: pd.Series, present: NDArray[np.bool_], text: pd.Series,
                 lay: _Layout, invalid: NDArray[np.bool_], chunk: ChunkContext,
                 *, encrypt: bool) -> None:
        column = self.column.column
        reasons = pd.Series(lay.reason[invalid]).value_counts()
        for reason, n in reasons.items():
            chunk.count(column, str(reason), int(n))
        if encrypt and self.config.on_invalid == "token":
            chunk.count(column, "fallback_token", int(invalid.sum()))
            return
        mask = np.zeros(len(values), dtype=bool)
        mask[np.flatnonzero(present)[invalid]] = True
        keys = chunk.row_keys(pd.Series(mask, index=values.index))
        summary = ", ".join(f"{n} {str(r).replace('_', ' ')}" for r, n in reasons.items())
        if encrypt:
            chunk.count(column, "invalid", int(invalid.sum()))
            what = "cannot be FF1-encrypted"
        else:
            chunk.count(column, "not_decryptable", int(invalid.sum()))
            what = "are not ciphertexts of this ff1 configuration (tampered or foreign)"
        raise TransformError(f"column {column!r}: {int(invalid.sum())} value(s) {what} "
                             f"({summary}); row keys {', '.join(keys)}")

    def _fallback(self, text: pd.Series, chunk: ChunkContext) -> list[str]:
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
        head = f"tok_v{token_key.version}_"
        # Invalid values are the exception, so a per-value HMAC is cheap enough here.
        return [head + base64.b32encode(hmac.digest(token_key.material, h.encode(), "sha256")[:16])
                .decode().rstrip("=").lower() + tail for h, tail in zip(heads, tails, strict=True)]
