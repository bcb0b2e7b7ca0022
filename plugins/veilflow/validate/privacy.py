"""Re-identification risk on declared quasi-identifiers: k-anonymity, distinct l-diversity
and t-closeness, plus suppression of the rows in classes smaller than k.

An *equivalence class* is the set of rows sharing one combination of quasi-identifier
values. For a table:

- **k** is the size of its smallest class (k-anonymity: every row hides among k),
- **l** is the smallest number of distinct sensitive values in a class (distinct l-diversity),
- **t** is the largest Earth Mover's Distance between a class's distribution of the
  sensitive value and the whole table's (t-closeness, Li, Li & Venkatasubramanian 2007):
  *equal distance* for categorical values, ``EMD = 1/2 · Σ |p_i − q_i|``, and *ordered
  distance* for numeric and temporal values, ``EMD = 1/(m−1) · Σ_i |Σ_{j≤i} (p_j − q_j)|``
  over the m distinct values of the table in order.

NULL counts as a value of its own everywhere (a class of NULL quasi-identifiers is still a
class; a NULL diagnosis is still something an attacker learns); it sorts last.

Two front doors share one numeric core: :func:`table_risk` aggregates in PostgreSQL where the
data is (only per-class counts travel) and :func:`frame_risk` does the same for a pandas
frame read from a CSV or Parquet file. The core works on a histogram of
``(class id, value rank, count)`` triples, vectorized with numpy. In a frame, a row's class
id comes from factorizing each quasi-identifier and joining the codes in mixed radix (no
group-by). With ``with_t=False`` both doors compute k and l only: the class-size
distribution and each class's number of distinct sensitive values, no histogram.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd
import psycopg
import pyarrow.csv as pacsv
from psycopg import sql

from veilflow.errors import SourceError
from veilflow.zones.copy_io import drain_copy_out

log = logging.getLogger(__name__)

Distance = Literal["equal", "ordered"]
DistanceChoice = Literal["auto", "equal", "ordered"]

#: PostgreSQL types whose values have an order that means something (ordered distance).
ORDERED_TYPES = (
    "smallint",
    "integer",
    "bigint",
    "numeric",
    "real",
    "double precision",
    "date",
    "timestamp",
    "time",
    "interval",
    "money",
)


@dataclass(frozen=True)
class RiskMetrics:
    """k, l and t of one table on one set of quasi-identifiers; no values, only counts."""

    quasi_identifiers: tuple[str, ...]
    sensitive: str | None
    rows: int
    classes: int
    k: int
    l: int | None  # noqa: E741 - the name used in the literature
    t: float | None
    distance: Distance | None
    #: Equivalence-class size -> number of classes of that size.
    class_sizes: dict[int, int] = field(default_factory=dict)

    def rows_in_classes_below(self, k: int) -> int:
        """How many rows sit in classes smaller than ``k`` (what suppression would remove)."""
        return sum(size * count for size, count in self.class_sizes.items() if size < k)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form for the run manifest, the CLI and lineage assertions."""
        return {
            "quasi_identifiers": list(self.quasi_identifiers),
            "sensitive": self.sensitive,
            "rows": self.rows,
            "classes": self.classes,
            "k": self.k,
            "l": self.l,
            "t": None if self.t is None else round(self.t, 6),
            "distance": self.distance,
            "class_sizes": {str(s): c for s, c in sorted(self.class_sizes.items())},
        }


# --------------------------------------------------------------------------- numeric core


def _ordered_emd(
    cls: np.ndarray, val: np.ndarray, cnt: np.ndarray, sizes: np.ndarray, q: np.ndarray
) -> np.ndarray:
    """Ordered-distance EMD of every class against the global distribution ``q``.

    ``cls``/``val``/``cnt`` are sorted by (class, value). Per class, the cumulative share
    F(i) is a step function that changes only at the class's own values, while the global
    cumulative share G(i) is known for every rank; the sum of |F − G| over each run of ranks
    where F is constant comes from prefix sums of G and one binary search, so the cost is
    O(entries · log m), never classes × m.
    """
    m = q.size
    n_classes = sizes.size
    if m <= 1:
        return np.zeros(n_classes)
    g = np.cumsum(q)
    g[-1] = 1.0
    sg = np.concatenate(([0.0], np.cumsum(g)))  # sg[i] = Σ_{r<i} G(r)

    starts = np.flatnonzero(np.r_[True, cls[1:] != cls[:-1]])
    first_of_class = np.zeros(cls.size, dtype=bool)
    first_of_class[starts] = True
    # Integer running count within each class, so shares are exact ratios.
    run = np.cumsum(cnt)
    before = np.repeat(run[starts] - cnt[starts], np.diff(np.r_[starts, cls.size]))
    f = (run - before) / sizes[cls]

    # Run of ranks [a, b] on which F equals f: from this entry's value to the next one's.
    a = val
    last_of_class = np.r_[cls[1:] != cls[:-1], True]
    nxt = np.r_[val[1:], m]
    b = np.where(last_of_class, m - 1, nxt - 1)

    split = np.clip(np.searchsorted(g, f, side="left"), a, b + 1)  # first r with G(r) >= f
    below = f * (split - a) - (sg[split] - sg[a])
    above = (sg[b + 1] - sg[split]) - f * (b + 1 - split)
    per_entry = below + above

    # Ranks before a class's first value, where F = 0: Σ G(r) for r < first value.
    lead = sg[val[starts]]
    total = np.bincount(cls, weights=per_entry, minlength=n_classes)
    total[cls[starts]] += lead
    return np.asarray(total / (m - 1))


def _equal_emd(
    cls: np.ndarray, val: np.ndarray, cnt: np.ndarray, sizes: np.ndarray, q: np.ndarray
) -> np.ndarray:
    """Equal-distance EMD, ½·Σ|p − q|, of every class; values absent from a class add q."""
    p = cnt / sizes[cls]
    qv = q[val]
    partial = np.bincount(cls, weights=np.abs(p - qv) - qv, minlength=sizes.size)
    return np.asarray(np.clip(0.5 * (1.0 + partial), 0.0, 1.0))


def metrics_from_histogram(
    cls: np.ndarray,
    val: np.ndarray | None,
    cnt: np.ndarray,
    *,
    quasi_identifiers: tuple[str, ...],
    sensitive: str | None,
    distance: Distance | None,
) -> RiskMetrics:
    """k, l, t from ``(class id, value rank, count)`` triples, one per distinct pair.

    Class ids and value ranks are dense from 0; value ranks follow the values' order (it
    matters for the ordered distance only). Without a sensitive column ``val`` is None and
    each class appears once.
    """
    cls = np.asarray(cls, dtype=np.int64)
    cnt = np.asarray(cnt, dtype=np.int64)
    rows = int(cnt.sum())
    if rows == 0:
        return RiskMetrics(
            quasi_identifiers,
            sensitive,
            0,
            0,
            0,
            0 if sensitive else None,
            0.0 if sensitive else None,
            distance if sensitive else None,
            {},
        )
    n_classes = int(cls.max()) + 1
    sizes = np.bincount(cls, weights=cnt, minlength=n_classes).astype(np.int64)
    size_values, size_counts = np.unique(sizes, return_counts=True)
    class_sizes = {int(s): int(c) for s, c in zip(size_values, size_counts, strict=True)}
    k = int(sizes.min())
    if sensitive is None or val is None:
        return RiskMetrics(
            quasi_identifiers, None, rows, n_classes, k, None, None, None, class_sizes
        )

    val = np.asarray(val, dtype=np.int64)
    distinct = np.bincount(cls, minlength=n_classes)
    l_div = int(distinct.min())
    order = np.lexsort((val, cls))
    cls, val, cnt = cls[order], val[order], cnt[order]
    q = np.bincount(val, weights=cnt).astype(np.float64) / rows
    dist: Distance = distance or "equal"
    emd = (_ordered_emd if dist == "ordered" else _equal_emd)(cls, val, cnt, sizes, q)
    t = float(max(0.0, emd.max()))
    return RiskMetrics(
        quasi_identifiers, sensitive, rows, n_classes, k, l_div, t, dist, class_sizes
    )


# --------------------------------------------------------------------------- files / frames


def _frame_distance(series: pd.Series, choice: DistanceChoice) -> Distance:
    if choice != "auto":
        return choice
    dtype = series.dtype
    if pd.api.types.is_bool_dtype(dtype):
        return "equal"
    if pd.api.types.is_numeric_dtype(dtype) or pd.api.types.is_datetime64_any_dtype(dtype):
        return "ordered"
    return "equal"


_INT64_MAX = np.iinfo(np.int64).max


def _dense_fits(space: int, rows: int, slot_bytes: int = 8) -> bool:
    """Whether codes in ``[0, space)`` over ``rows`` rows are cheaper counted in a dense
    array of ``slot_bytes`` per code (bincount, a presence table: O(rows + space)) than
    hashed; the array is kept to about 32 bytes per row."""
    return space * slot_bytes <= 32 * rows + 32768


def _value_codes(values: pd.Series, *, sort: bool = False) -> tuple[np.ndarray, int]:
    """Integer code per row of one column and the number of codes.

    NULL (any missing marker) is a value of its own with the last code, as GROUP BY treats
    it; with ``sort`` the codes follow the values' order.
    """
    codes, uniques = pd.factorize(values, sort=sort, use_na_sentinel=True)
    out = np.asarray(codes, dtype=np.int64)
    card = len(uniques)
    missing = out < 0
    if missing.any():
        out[missing] = card
        card += 1
    return out, card


def _dense_ids(codes: np.ndarray, space: int) -> tuple[np.ndarray, np.ndarray]:
    """Codes in ``[0, space)`` renumbered densely from 0, and the row count of each id."""
    if _dense_fits(space, codes.size):
        counts = np.bincount(codes, minlength=space)
        present = counts > 0
        if present.all():
            return codes, counts
        remap = np.cumsum(present, dtype=np.int64) - 1
        return remap[codes], counts[present]
    ids, uniques = pd.factorize(codes)
    ids = np.asarray(ids, dtype=np.int64)
    return ids, np.bincount(ids, minlength=len(uniques))


def _class_codes(
    frame: pd.DataFrame, quasi_identifiers: tuple[str, ...]
) -> tuple[np.ndarray, np.ndarray]:
    """Equivalence class id of every row (dense from 0) and the size of each class.

    Each quasi-identifier is factorized on its own and the codes are joined in mixed radix
    into one int64; when the next radix would overflow, the combination so far is
    renumbered densely first (at most one id per row, so the product stays in range).
    Exact: distinct combinations always get distinct ids.
    """
    n = len(frame)
    if n == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    if not quasi_identifiers:
        return np.zeros(n, dtype=np.int64), np.array([n], dtype=np.int64)
    combined, space = _value_codes(frame[quasi_identifiers[0]])
    for column in quasi_identifiers[1:]:
        codes, card = _value_codes(frame[column])
        if space > _INT64_MAX // card:
            combined, sizes = _dense_ids(combined, space)
            space = sizes.size
        combined = combined * card + codes
        space *= card
    return _dense_ids(combined, space)


def _distinct_per_class(cls: np.ndarray, n_classes: int, val: np.ndarray, m: int) -> np.ndarray:
    """Number of distinct values (codes in ``[0, m)``) in each class."""
    pair = cls * m + val
    space = n_classes * m
    if _dense_fits(space, cls.size, slot_bytes=1):
        seen = np.zeros(space, dtype=bool)
        seen[pair] = True
        return np.asarray(seen.reshape(n_classes, m).sum(axis=1), dtype=np.int64)
    return np.bincount(pd.unique(pair) // m, minlength=n_classes)


def frame_risk(
    frame: pd.DataFrame,
    quasi_identifiers: list[str] | tuple[str, ...],
    sensitive: str | None = None,
    *,
    distance: DistanceChoice = "auto",
    with_t: bool = True,
) -> RiskMetrics:
    """k, l, t of a pandas frame (the path for CSV and Parquet files).

    With ``with_t=False`` only k and distinct l are computed (t is None), in a few
    vectorized passes over the columns.
    """
    qi = tuple(quasi_identifiers)
    _require_columns(list(frame.columns), qi, sensitive, "the file")
    if frame.empty:
        return metrics_from_histogram(
            np.zeros(0),
            np.zeros(0) if sensitive else None,
            np.zeros(0),
            quasi_identifiers=qi,
            sensitive=sensitive,
            distance=None,
        )
    cls, sizes = _class_codes(frame, qi)
    n_classes = sizes.size
    if sensitive is None or not with_t:
        size_values, size_counts = np.unique(sizes, return_counts=True)
        l_div = None
        if sensitive is not None:
            val, m = _value_codes(frame[sensitive])
            l_div = int(_distinct_per_class(cls, n_classes, val, m).min())
        return RiskMetrics(
            qi,
            sensitive,
            len(frame),
            n_classes,
            int(sizes.min()),
            l_div,
            None,
            None,
            {int(s): int(c) for s, c in zip(size_values, size_counts, strict=True)},
        )
    column = frame[sensitive]
    dist = _frame_distance(column, distance)
    val, m = _value_codes(column, sort=True)  # ranks in value order, NULL last
    pair = cls * m + val
    space = n_classes * m
    if _dense_fits(space, pair.size):
        counts = np.bincount(pair, minlength=space)
        pair = np.flatnonzero(counts)
        counts = counts[pair]
    else:
        pair, counts = np.unique(pair, return_counts=True)
    return metrics_from_histogram(
        pair // m, pair % m, counts, quasi_identifiers=qi, sensitive=sensitive, distance=dist
    )


def read_table_file(path: str, columns: list[str]) -> pd.DataFrame:
    """Only ``columns`` of a CSV or Parquet file, typed the way pyarrow infers them."""
    lower = path.lower()
    if lower.endswith((".parquet", ".pq")):
        return pd.read_parquet(path, columns=columns)
    if lower.endswith((".csv", ".csv.gz", ".tsv")):
        sep = "\t" if lower.endswith(".tsv") else ","
        return pd.read_csv(path, usecols=columns, sep=sep, engine="pyarrow")
    raise SourceError(f"{path}: expected a .csv, .tsv or .parquet file")


def _require_columns(
    present: list[str], qi: tuple[str, ...], sensitive: str | None, where: str
) -> None:
    wanted = [*qi, *([sensitive] if sensitive else [])]
    missing = [c for c in wanted if c not in present]
    if missing:
        raise SourceError(f"{where} has no column(s) {', '.join(missing)}")


# --------------------------------------------------------------------------- PostgreSQL


def table_identifier(name: str) -> sql.Identifier:
    """``schema.table`` (either part optionally double-quoted) as a safe SQL identifier."""
    parts: list[str] = []
    buf, quoted, i = "", False, 0
    while i < len(name):
        ch = name[i]
        if ch == '"':
            if quoted and i + 1 < len(name) and name[i + 1] == '"':
                buf += '"'
                i += 1
            else:
                quoted = not quoted
        elif ch == "." and not quoted:
            parts.append(buf)
            buf = ""
        else:
            buf += ch
        i += 1
    parts.append(buf)
    if not 1 <= len(parts) <= 2 or not all(parts):
        raise SourceError(f"not a table name: {name!r}")
    return sql.Identifier(*parts)


def column_types(conn: psycopg.Connection[Any], table: str) -> dict[str, str]:
    """Column name -> PostgreSQL type (``format_type``) of ``table``, in table order."""
    ident = table_identifier(table).as_string(conn)
    with conn.cursor() as cur:
        try:
            cur.execute(
                "SELECT a.attname, format_type(a.atttypid, a.atttypmod) FROM pg_attribute a"
                " WHERE a.attrelid = %s::regclass AND a.attnum > 0 AND NOT a.attisdropped"
                " ORDER BY a.attnum",
                (ident,),
            )
        except psycopg.errors.UndefinedTable as exc:
            raise SourceError(f"table {table} does not exist") from exc
        return {str(name): str(typ) for name, typ in cur.fetchall()}


def _is_ordered_type(pg_type: str) -> bool:
    return pg_type.startswith(ORDERED_TYPES)


def _is_text_type(pg_type: str) -> bool:
    return pg_type.startswith(("text", "character", "varchar", "citext"))


def _sort_key(column: str, pg_type: str) -> sql.Composable:
    # Byte order sorts text several times faster than a linguistic collation; any
    # consistent order serves for class ids and categorical values.
    ident = sql.Identifier(column)
    return sql.SQL('{} COLLATE "C"').format(ident) if _is_text_type(pg_type) else ident


def _filter(types: dict[str, str], exclude_canaries: bool) -> sql.Composable:
    if exclude_canaries and "_vf_canary" in types:
        return sql.SQL("WHERE _vf_canary IS NOT TRUE")
    return sql.SQL("")


#: The first GROUP BY reads every row. PostgreSQL runs it as a Partial HashAggregate in
#: parallel workers under a Gather only when it expects few groups to come back, and on a
#: freshly written candidate (a partitioned table without statistics of its own) it guesses
#: ~100,000 groups and stays serial. A lower cost per row passed from a worker lets it choose
#: the parallel plan: faster when classes are coarse (the generalized candidate: ~20,000
#: groups out of 1M rows), a few percent slower when nearly every row is its own class.
#: Tables under ``min_parallel_table_scan_size`` stay serial either way.
PARALLEL_AGGREGATE = {"parallel_tuple_cost": "0.001"}


@contextmanager
def _planner_settings(conn: psycopg.Connection[Any], settings: dict[str, str]) -> Iterator[None]:
    """``settings`` for the statements run inside only.

    They are set local to a transaction (a savepoint if one is open): an error rolls them
    back with it; on success the values they replaced are set back before it ends.
    """
    names = list(settings)
    current = sql.SQL(", ").join(
        sql.SQL("current_setting({})").format(sql.Literal(n)) for n in names
    )
    assign = sql.SQL("SELECT {}").format(
        sql.SQL(", ").join(sql.SQL("set_config(%s, %s, true)") for _ in names)
    )
    with conn.transaction(), conn.cursor() as cur:
        cur.execute(sql.SQL("SELECT {}").format(current))
        before = cur.fetchone() or ()
        cur.execute(assign, [x for n in names for x in (n, settings[n])])
        yield
        cur.execute(assign, [x for n, v in zip(names, before, strict=True) for x in (n, v)])


def table_risk(
    conn: psycopg.Connection[Any],
    table: str,
    quasi_identifiers: list[str] | tuple[str, ...],
    sensitive: str | None = None,
    *,
    distance: DistanceChoice = "auto",
    with_t: bool = True,
    exclude_canaries: bool = True,
) -> RiskMetrics:
    """k, l, t of a PostgreSQL table, aggregated where the data is.

    Only per-class counts leave the server: the class-size distribution for k, per-class
    distinct counts for l, and for t the ``(class, value rank, count)`` histogram. Canary
    rows (``_vf_canary``) are never published, so they are left out.
    """
    qi = tuple(quasi_identifiers)
    types = column_types(conn, table)
    _require_columns(list(types), qi, sensitive, f"table {table}")
    tbl = table_identifier(table)
    where = _filter(types, exclude_canaries)
    qi_cols = sql.SQL(", ").join(sql.Identifier(c) for c in qi) if qi else None
    group_qi = sql.SQL("GROUP BY {}").format(qi_cols) if qi_cols else sql.SQL("")

    if sensitive is None or not with_t:
        if sensitive is None:
            query = sql.SQL(
                "SELECT size, count(*), NULL::bigint FROM "
                "(SELECT count(*) AS size FROM {tbl} {where} {group_qi}) c GROUP BY size"
            ).format(tbl=tbl, where=where, group_qi=group_qi)
        else:
            sens = sql.Identifier(sensitive)
            inner_group = sql.SQL("GROUP BY {}").format(
                sql.SQL(", ").join([*(sql.Identifier(c) for c in qi), sens])
            )
            query = sql.SQL(
                "WITH h AS (SELECT {qi_sel} count(*) AS n FROM {tbl} {where} {inner_group}),"
                " c AS (SELECT sum(n)::bigint AS size, count(*) AS d FROM h {group_qi})"
                " SELECT size, count(*), min(d) FROM c GROUP BY size"
            ).format(
                qi_sel=sql.SQL("{}, ").format(qi_cols) if qi_cols else sql.SQL(""),
                tbl=tbl,
                where=where,
                inner_group=inner_group,
                group_qi=group_qi,
            )
        with _planner_settings(conn, PARALLEL_AGGREGATE), conn.cursor() as cur:
            cur.execute(query)
            dist_rows = cur.fetchall()
        class_sizes = {int(s): int(c) for s, c, _ in dist_rows}
        rows = sum(s * c for s, c in class_sizes.items())
        l_div = min((int(d) for _, _, d in dist_rows), default=0) if sensitive else None
        return RiskMetrics(
            qi,
            sensitive,
            rows,
            sum(class_sizes.values()),
            min(class_sizes, default=0),
            l_div,
            None,
            None,
            class_sizes,
        )

    sens_type = types[sensitive]
    dist: Distance = (
        ("ordered" if _is_ordered_type(sens_type) else "equal") if distance == "auto" else distance
    )
    order_qi = sql.SQL(", ").join(_sort_key(c, types[c]) for c in qi) if qi else sql.SQL("1")
    order_s = (
        sql.SQL("{} NULLS LAST").format(sql.Identifier(sensitive))
        if dist == "ordered"
        else _sort_key(sensitive, sens_type)
    )
    all_cols = sql.SQL(", ").join(sql.Identifier(c) for c in (*qi, sensitive))
    query = sql.SQL(
        "COPY (WITH h AS (SELECT {all_cols}, count(*) AS n FROM {tbl} {where}"
        " GROUP BY {all_cols})"
        " SELECT dense_rank() OVER (ORDER BY {order_qi}) - 1,"
        " dense_rank() OVER (ORDER BY {order_s}) - 1, n FROM h) TO STDOUT"
    ).format(all_cols=all_cols, tbl=tbl, where=where, order_qi=order_qi, order_s=order_s)
    buf = io.BytesIO()
    with _planner_settings(conn, PARALLEL_AGGREGATE), conn.cursor() as cur, cur.copy(query) as copy:
        drain_copy_out(conn, copy, buf)  # a class histogram can have a row per source row
    if buf.tell() == 0:
        return metrics_from_histogram(
            np.zeros(0),
            np.zeros(0),
            np.zeros(0),
            quasi_identifiers=qi,
            sensitive=sensitive,
            distance=dist,
        )
    buf.seek(0)
    hist = pacsv.read_csv(
        buf,
        read_options=pacsv.ReadOptions(column_names=["c", "v", "n"]),
        parse_options=pacsv.ParseOptions(delimiter="\t"),
    )
    return metrics_from_histogram(
        hist.column("c").to_numpy(),
        hist.column("v").to_numpy(),
        hist.column("n").to_numpy(),
        quasi_identifiers=qi,
        sensitive=sensitive,
        distance=dist,
    )


def suppress_small_classes(
    conn: psycopg.Connection[Any],
    table: str,
    quasi_identifiers: list[str] | tuple[str, ...],
    k: int,
    *,
    max_rows: int | None = None,
    beside: str | None = None,
) -> int:
    """Delete the rows of ``table`` in equivalence classes smaller than ``k``.

    Canary rows are neither counted nor deleted. When more than ``max_rows`` rows would go,
    nothing is deleted and the count is returned so the caller can fail the gate with it.
    Returns the number of rows in classes below k (deleted unless over the bound).
    ``beside`` (``schema.table``, the published table an incremental run appends to):
    classes are counted over both tables' rows, and only ``table``'s rows are deleted.
    """
    qi = tuple(quasi_identifiers)
    if k <= 1 or not qi:
        return 0
    types = column_types(conn, table)
    _require_columns(list(types), qi, None, f"table {table}")
    tbl = table_identifier(table)
    where = _filter(types, True)
    qi_cols = sql.SQL(", ").join(sql.Identifier(c) for c in qi)
    # A window partition treats NULLs as equal, as GROUP BY does, so classes match k's.
    victims = sql.SQL(
        "SELECT tableoid, ctid FROM (SELECT tableoid, ctid,"
        " count(*) OVER (PARTITION BY {qi}) AS size"
        " FROM {tbl} {where}) w WHERE size < {k}"
    ).format(qi=qi_cols, tbl=tbl, where=where, k=sql.Literal(k))
    if beside is not None:
        # A window partition treats NULLs as equal across both tables too.
        victims = sql.SQL(
            "SELECT tableoid, ctid FROM (SELECT tableoid, ctid, mine,"
            " count(*) OVER (PARTITION BY {qi}) AS size FROM"
            " (SELECT tableoid, ctid, true AS mine, {qi} FROM {tbl} {where}"
            "  UNION ALL SELECT 0::oid, '(0,0)'::tid, false, {qi} FROM {pub}) u) w"
            " WHERE mine AND size < {k}"
        ).format(
            qi=qi_cols,
            tbl=tbl,
            where=where,
            pub=table_identifier(beside),
            k=sql.Literal(k),
        )
    with conn.cursor() as cur:
        cur.execute(sql.SQL("SELECT count(*) FROM ({victims}) v").format(victims=victims))
        row = cur.fetchone()
        count = int(row[0]) if row else 0
        if count == 0 or (max_rows is not None and count > max_rows):
            return count
        # (tableoid, ctid) names a row in a partitioned table too (ctid alone repeats
        # across partitions).
        cur.execute(
            sql.SQL("DELETE FROM {tbl} WHERE (tableoid, ctid) IN ({victims})").format(
                tbl=tbl, victims=victims
            )
        )
        log.info("suppressed %d rows in classes smaller than k=%d in %s", cur.rowcount, k, table)
        return int(cur.rowcount)
