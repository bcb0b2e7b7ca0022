"""Deterministic HMAC-SHA256 tokens: the same input under the same data key gives the same
token in every table and run, so joins survive; the key version is part of the token."""

from __future__ import annotations

import base64
import hmac
from typing import ClassVar

import pandas as pd

from veilflow.transform.base import STRING, ChunkContext, Operator, OperatorConfig


class TokenizeConfig(OperatorConfig):
    #: Keep the part after the last ``@`` (email domain) in clear.
    keep_domain: bool = False
    #: Accepted for readability of policies; tokens are always deterministic.
    deterministic: bool = True
    prefix: str = "tok"


def hmac_digests(key: bytes, values: list[str]) -> list[bytes]:
    """HMAC-SHA256 of each value's UTF-8 bytes (OpenSSL's one-shot path per value)."""
    return [hmac.digest(key, v.encode(), "sha256") for v in values]


class Tokenize(Operator[TokenizeConfig]):
    """``tok_v<version>_<26 base32 chars>``: 128 bits of HMAC-SHA256 under the token key."""

    name: ClassVar[str] = "tokenize"
    Config = TokenizeConfig
    key_purpose = "token"
    gdpr = "pseudonymous"
    gdpr_reason = "keyed deterministic token; linkable by whoever holds the data key"

    def apply(self, values: pd.Series, chunk: ChunkContext) -> pd.Series:
        key = self.key
        assert key is not None
        present = values.notna()
        raw = values[present]
        if self.config.keep_domain:
            parts = raw.str.rpartition("@")
            has_at = parts[1] == "@"
            local = parts[0].where(has_at, raw)
            domain = ("@" + parts[2]).where(has_at, "")
        else:
            local, domain = raw, pd.Series("", index=raw.index, dtype=STRING)
        head = f"{self.config.prefix}_v{key.version}_"
        tokens = [
            head + base64.b32encode(d[:16]).decode().rstrip("=").lower()
            for d in hmac_digests(key.material, local.tolist())
        ]
        out = pd.Series(pd.NA, index=values.index, dtype=STRING)
        out[present] = pd.Series(tokens, index=raw.index, dtype=STRING) + domain.astype(STRING)
        return out
