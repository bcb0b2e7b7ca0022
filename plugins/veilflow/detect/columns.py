"""The column classifier: what each column of a table holds, from a sample.

Structured columns are checked with vectorized patterns over the whole sample (pyarrow
regex kernels, numpy Luhn), never with NLP; names and places use the name/place lists; only
columns of free text go through the text scanner. Column names are hints that break ties
and confirm weak evidence, never the only evidence for a PII type. The patterns, hints and
suggested operators it weighs are the tables of ``veilflow.detect.column_evidence``.
"""

from __future__ import annotations

import ipaddress
import re
from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from veilflow.detect.column_evidence import (
    FREE_TEXT,
    HINTED_PATTERNS,
    HINTS,
    IDENTIFIER,
    ORDER,
    SUGGESTIONS,
    VALUE_PATTERNS,
)
from veilflow.detect.gazetteers import gazetteers
from veilflow.detect.identifiers import id_token_ok
from veilflow.detect.shape import masked_shape
from veilflow.policy.detection import DetectionSettings
from veilflow.policy.entities import IDENTIFIER_ENTITIES
from veilflow.transform.checksums import card_ok, iban_prefix, imei_ok, luhn_array, ssn_ok, vin_ok


@dataclass(frozen=True)
class ColumnVerdict:
    """What the classifier concluded about one column; never holds a raw value."""

    column: str
    #: A PII entity, ``FREE_TEXT`` (text with embedded PII), ``IDENTIFIER`` (a unique
    #: record key) or None (not personal data as far as the sample shows).
    entity: str | None
    confidence: float
    #: Share of sampled non-NULL values that showed the entity.
    hit_rate: float
    sampled: int
    null_rate: float
    action: str
    params: dict[str, Any] = field(default_factory=dict)
    evidence: str = ""
    #: Masked format of a typical matching value (``j***@e***.com``), never the value.
    shape: str = ""
    #: For free text: how many sampled values held each entity.
    text_entities: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def summary(self) -> str:
        """One line for messages (schema drift, logs): no values."""
        what = self.entity or "no PII found"
        return (
            f"{self.column}: {what} (confidence {self.confidence:.2f}, hit rate "
            f"{self.hit_rate:.0%} of {self.sampled} sampled), suggested action "
            f"{self.action}"
        )


def hinted(column: str) -> list[str]:
    """Entities the column's name suggests."""
    name = re.sub(r"(?<=[a-z])(?=[A-Z])", "_", column).lower()
    return [e for e, rx in HINTS if rx.search(name)]


def _as_strings(values: pd.Series) -> pa.Array:
    s = values.dropna()
    if not len(s):
        return pa.array([], type=pa.string())
    if s.dtype != object and not isinstance(s.dtype, pd.StringDtype):
        s = s.astype(str)
    arr = pa.array(
        s.astype(object)
        .map(lambda v: v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v))
        .tolist(),
        type=pa.string(),
    )
    return pc.utf8_trim_whitespace(arr)


def _validated(entity: str, values: list[str], matched: np.ndarray) -> np.ndarray:
    """Checksum / range validation on the pattern matches."""
    if not matched.any():
        return matched
    idx = np.flatnonzero(matched)
    picked = [values[i] for i in idx]
    if entity == "CREDIT_CARD":
        digits = [re.sub(r"\D", "", v) for v in picked]
        ok = luhn_array(digits) & np.array([card_ok(d) for d in digits], dtype=bool)
    elif entity == "IBAN_CODE":
        ok = np.array([iban_prefix(v.replace(" ", "")) is not None for v in picked], dtype=bool)
    elif entity == "US_SSN":
        ok = np.array([ssn_ok(re.sub(r"\D", "", v)) for v in picked], dtype=bool)
    elif entity == "IP_ADDRESS":
        ok = np.array([_ip_ok(v) for v in picked], dtype=bool)
    elif entity == "VEHICLE_ID":
        ok = np.array([vin_ok(v) and not v.isdigit() for v in picked], dtype=bool)
    elif entity == "DEVICE_ID":
        ok = np.array([not v.isdigit() or imei_ok(v) for v in picked], dtype=bool)
    elif entity == "PHONE_NUMBER":
        nd = np.array(
            [len(re.sub(r"\D", "", re.sub(r"(?i) ?(?:x|ext\.?|#) ?\d+$", "", v))) for v in picked]
        )
        ok = (nd >= 7) & (nd <= 15)
    else:
        return matched
    out = np.zeros_like(matched)
    out[idx] = ok
    return out


def _ip_ok(value: str) -> bool:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True


_SPACED_CODE = re.compile(r"^[A-Za-z0-9]+(?:[ ][A-Za-z0-9]+){1,3}$")


def _identifier_rate(values: list[str]) -> float:
    """Share of values shaped like an identifier: 5+ characters with 2+ digits, not a date,
    amount or version (as the text scanner's context-named identifiers)."""
    hits = sum(
        1
        for v in values
        if id_token_ok(v.replace(" ", "-")) and (" " not in v or _SPACED_CODE.match(v))
    )
    return hits / max(len(values), 1)


_AGE_VALUE = re.compile(r"^\d{1,3}$")


def _ages(values: list[str]) -> tuple[float, int]:
    """Share of values that are ages in years (0-125), and how many are over 89."""
    ages = [int(v) for v in values if _AGE_VALUE.match(v) and int(v) <= 125]
    return len(ages) / max(len(values), 1), sum(a >= 90 for a in ages)


def _person_rate(values: list[str]) -> float:
    g = gazetteers()
    hits = 0
    for v in values:
        toks = [t.strip(".,") for t in v.split()]
        toks = [t for t in toks if t]
        if not 1 <= len(toks) <= 5 or any(ch.isdigit() for ch in v):
            continue
        if toks[0] in g.given or toks[-1] in g.surnames or (len(toks) > 1 and toks[1] in g.given):
            hits += 1
    return hits / max(len(values), 1)


_PLACE_SHAPE = re.compile(
    r"^(?:North|South|East|West|New|Lake|Port|Fort|Mount|Saint|St\.|San|Santa|Los|Las|El)\s\S"
    r"|(?:town|ton|land|ville|berg|burgh|borough|bury|view|port|mouth|stad|furt|chester|fort|"
    r"haven|side|shire|field|ford|wood|dale|heim|hausen|dorf|burg|stadt|ingen|feld|bach|polis|"
    r"ham|by|holm|bourg|city)$",
    re.IGNORECASE,
)
_STREET = re.compile(r"^\d{1,6}[A-Za-z]?\s+\S.*\s\S|^\S.*\s\d{1,5}[a-zA-Z]?(?:[/-]\d+)?$")


def _place_rate(values: list[str]) -> float:
    g = gazetteers()
    hits = 0
    for v in values:
        if v in g.countries or v in g.states or _PLACE_SHAPE.search(v) or _STREET.search(v):
            hits += 1
    return hits / max(len(values), 1)


def classify_series(
    column: str, values: pd.Series, settings: DetectionSettings | None = None
) -> ColumnVerdict:
    """Classify one column from a sample of its values."""
    s = settings or DetectionSettings()
    total = len(values)
    arr = _as_strings(values.head(s.sample_size))
    arr = arr.filter(pc.greater(pc.utf8_length(arr), 0))
    n = len(arr)
    null_rate = 1 - n / total if total else 0.0
    hints = hinted(column)

    def verdict(
        entity: str | None,
        hit: float,
        evidence: str,
        shape: str = "",
        conf: float | None = None,
        text_entities: dict[str, int] | None = None,
    ) -> ColumnVerdict:
        action, params = SUGGESTIONS.get(entity or "", ("keep", {}))
        if conf is None:
            conf = min(1.0, hit * (1.0 if entity in hints else 0.9)) if entity else 1 - hit
        return ColumnVerdict(
            column,
            entity,
            round(conf, 3),
            round(hit, 3),
            n,
            round(null_rate, 3),
            action,
            dict(params),
            evidence,
            shape,
            text_entities or {},
        )

    if n == 0:
        return verdict(None, 0.0, "no non-NULL values sampled", conf=0.0)
    values_list: list[str] = arr.to_pylist()
    lengths = np.asarray(pc.utf8_length(arr).to_numpy(zero_copy_only=False))
    spaces = np.array([v.count(" ") for v in values_list])
    distinct = len(set(values_list)) / n
    need = s.min_hit_rate

    # Free text: long, many words. Scan a sample with the text scanner.
    if lengths.mean() >= 30 and spaces.mean() >= 4:
        from veilflow.detect.scanner import scanner_for

        sample = values_list[: min(n, 200)]
        scan = scanner_for(s).scan(sample)
        per_entity: Counter[str] = Counter()
        with_pii = 0
        for spans in scan.spans:
            kinds = {sp.entity for sp in spans}
            per_entity.update(kinds)
            with_pii += bool(kinds)
        hit = with_pii / len(sample)
        found = ", ".join(f"{e} in {c}" for e, c in per_entity.most_common())
        evidence = (
            f"free text (mean {lengths.mean():.0f} chars); PII in {with_pii} of "
            f"{len(sample)} scanned values" + (f": {found}" if found else "")
        )
        conf = max(hit, 0.5 if FREE_TEXT in hints else 0.3)
        return verdict(FREE_TEXT, hit, evidence, conf=conf, text_entities=dict(per_entity))

    # Structured formats, the specific before the general.
    rates: dict[str, float] = {}
    masks: dict[str, np.ndarray] = {}
    for entity in ORDER:
        patterns = [VALUE_PATTERNS[entity]]
        if entity in HINTED_PATTERNS and entity in hints:
            patterns.append(HINTED_PATTERNS[entity])
        m = np.zeros(n, dtype=bool)
        for rx in patterns:
            m |= np.asarray(
                pc.match_substring_regex(arr, rx).to_numpy(zero_copy_only=False), dtype=bool
            )
        m = _validated(entity, values_list, m)
        masks[entity] = m
        rates[entity] = float(m.mean())

    numeric = np.asarray(
        pc.match_substring_regex(arr, r"^[-+]?\d+(?:[.,]\d+)?$").to_numpy(zero_copy_only=False),
        dtype=bool,
    ).mean()
    # A column named for a kind of identifier (mrn, member_id, serial_no, license_plate)
    # whose values are shaped like identifiers holds that identifier, unless its values
    # match a format the name also points at (a digits-only account_no is a bank number).
    named_ids = [e for e in hints if e in IDENTIFIER_ENTITIES]
    if named_ids and not any(rates[e] >= need for e in ORDER if e in hints):
        rate = _identifier_rate(values_list)
        if rate >= need:
            return verdict(
                named_ids[0],
                rate,
                f"{rate:.0%} of {n} sampled values are identifier-shaped; column name "
                f"suggests {named_ids[0]}",
                masked_shape(values_list[0]),
            )
    # A unique record key beats the number formats it may happen to match.
    # (unless the name also points at a format the values match, as in "post_code").
    if (
        IDENTIFIER in hints
        and distinct >= 0.95
        and not any(rates[e] >= need for e in ORDER if e in hints)
    ):
        return verdict(
            IDENTIFIER,
            distinct,
            f"{distinct:.0%} distinct values; column name marks a record key",
            masked_shape(values_list[0]),
        )
    for entity in ORDER:
        rate = rates[entity]
        # Plain numbers look like these; without a confirming name demand more.
        if (
            entity in ("ZIP_CODE", "US_BANK_NUMBER", "PHONE_NUMBER")
            and entity not in hints
            and numeric >= 0.5
            and (entity != "PHONE_NUMBER" or rate < 0.95)
        ):
            continue
        if (
            entity in ("ZIP_CODE", "US_BANK_NUMBER", "PHONE_NUMBER")
            and entity not in hints
            and any(rates[h] >= need for h in ORDER if h in hints and h != entity)
        ):
            # The name points at another number format the values also match: a
            # digits-only account_no is a bank number, not the phone number it looks like.
            continue
        threshold = need if entity in hints else 0.8
        if rate >= threshold:
            first = int(np.flatnonzero(masks[entity])[0])
            how = {
                "CREDIT_CARD": " (Luhn-valid)",
                "IBAN_CODE": " (mod-97 valid)",
                "US_SSN": " (valid SSN ranges)",
                "VEHICLE_ID": " (VIN check digit valid)",
            }.get(entity, "")
            named = f"; column name suggests {entity}" if entity in hints else ""
            return verdict(
                entity,
                rate,
                f"{rate:.0%} of {n} sampled values match {entity}{how}{named}",
                masked_shape(values_list[first], entity),
            )

    # Ages: ages of 90 and over are identifying on their own (one "90+" category).
    if "AGE_OVER_89" in hints:
        share, old = _ages(values_list)
        if share >= 0.9 and old:
            return verdict(
                "AGE_OVER_89",
                share,
                f"ages in years; {old} of {n} sampled values are 90 or more; column name "
                "suggests an age",
                "dd",
            )

    # Names and places from the name/place lists.
    person = _person_rate(values_list) if spaces.mean() <= 4 else 0.0
    place = _place_rate(values_list)
    if "PERSON" in hints and person >= need and "LOCATION" not in hints:
        return verdict(
            "PERSON",
            person,
            f"{person:.0%} of values are known given names or "
            "surnames; column name suggests PERSON",
            masked_shape(values_list[0], "PERSON"),
        )
    if "LOCATION" in hints and (place >= need or (lengths.mean() <= 40 and numeric < 0.5)):
        return verdict(
            "LOCATION",
            max(place, need),
            f"{place:.0%} of values have a place or "
            "street-address shape; column name suggests LOCATION",
            masked_shape(values_list[0], "LOCATION"),
        )
    if person >= 0.6 and person > place:
        return verdict(
            "PERSON",
            person,
            f"{person:.0%} of values are known given names or surnames",
            masked_shape(values_list[0], "PERSON"),
        )
    if place >= 0.6:
        return verdict(
            "LOCATION",
            place,
            f"{place:.0%} of values have a place or street-address shape",
            masked_shape(values_list[0], "LOCATION"),
        )

    # A unique code-like column is a record key even without a telling name.
    codey = bool(pc.all(pc.match_substring_regex(arr, r"^[A-Za-z0-9_-]{1,40}$")).as_py())
    if (codey and distinct >= 0.98 and n >= 20 and numeric < 0.5) or (
        IDENTIFIER in hints and distinct >= 0.95
    ):
        return verdict(
            IDENTIFIER,
            distinct,
            f"{distinct:.0%} distinct code-like values",
            masked_shape(values_list[0]),
        )
    best = max(rates.items(), key=lambda kv: kv[1])
    cardinality = len(set(values_list))
    kind = "categorical" if cardinality <= 50 else "numeric" if numeric >= 0.9 else "text"
    evidence = f"{kind}, {cardinality} distinct of {n} sampled"
    if best[1] > 0:
        evidence += f"; strongest format {best[0]} at {best[1]:.0%}"
    return verdict(None, best[1], evidence)


def classify_columns(
    frame_sample: pd.DataFrame, settings: DetectionSettings | None = None
) -> list[ColumnVerdict]:
    """A verdict for every column of a sample of a table (e.g. the first rows or a
    ``TABLESAMPLE``), in column order."""
    return [classify_series(str(c), frame_sample[c], settings) for c in frame_sample.columns]


def drift_detail(
    frame_sample: pd.DataFrame, columns: list[str], settings: DetectionSettings | None = None
) -> str:
    """The scan's verdict on new (undeclared) columns, for the ``SchemaDrift`` message:
    ``scan of new column(s): nickname: PERSON (confidence 0.92, ...), suggested action
    surrogate``. Never a value."""
    present = [c for c in columns if c in frame_sample.columns]
    if not present:
        return ""
    verdicts = classify_columns(frame_sample[present], settings)
    return "scan of new column(s): " + "; ".join(v.summary() for v in verdicts)
