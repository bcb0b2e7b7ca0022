"""Re-identification risk of a PostgreSQL table on declared quasi-identifiers (k-anonymity,
distinct l-diversity, t-closeness: see ``validate.risk_metrics``), and suppression of the
rows in classes smaller than k.

NULL counts as a value of its own everywhere (a class of NULL quasi-identifiers is still a
class; a NULL diagnosis is still something an attacker learns); it sorts last.

:func:`table_risk` aggregates in PostgreSQL where the data is (only per-class counts travel)
and hands the ``(class id, value rank, count)`` histogram to the numeric core
(``validate.risk_metrics``), which ``validate.file_risk`` shares for CSV and Parquet files.
With ``with_t=False`` only k and l are computed: the class-size distribution and each
class's number of distinct sensitive values, no histogram.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import psycopg
import pyarrow.csv as pacsv
from psycopg import sql

from veilflow.errors import SourceError
from veilflow.validate.risk_metrics import (
    Distance,
    DistanceChoice,
    RiskMetrics,
    metrics_from_histogram,
    require_columns,
)
from veilflow.zones.copy_io import drain_copy_out

log = logging.getLogger(__name__)

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


def is_ordered_type(pg_type: str) -> bool:
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
    require_columns(list(types), qi, sensitive, f"table {table}")
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
        ("ordered" if is_ordered_type(sens_type) else "equal") if distance == "auto" else distance
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
    victims = _small_class_rows(conn, table, qi, k, beside)
    tbl = table_identifier(table)
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


def _small_class_rows(
    conn: psycopg.Connection[Any],
    table: str,
    qi: tuple[str, ...],
    k: int,
    beside: str | None = None,
) -> sql.Composable:
    """A query of ``(tableoid, ctid)`` of ``table``'s rows in classes smaller than ``k``
    (canaries neither counted nor named; with ``beside``, classes counted over both
    tables)."""
    types = column_types(conn, table)
    require_columns(list(types), qi, None, f"table {table}")
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
    return victims


def suppress_small_classes_returning(
    conn: psycopg.Connection[Any],
    table: str,
    quasi_identifiers: list[str] | tuple[str, ...],
    k: int,
    key: str,
) -> list[str]:
    """Delete the rows of ``table`` in classes smaller than ``k`` and return their ``key``
    values as text: for a caller that must follow the suppressed rows into the tables that
    refer to them (a dataset's erasure)."""
    qi = tuple(quasi_identifiers)
    if k <= 1 or not qi:
        return []
    victims = _small_class_rows(conn, table, qi, k)
    rows = conn.execute(
        sql.SQL(
            "DELETE FROM {tbl} WHERE (tableoid, ctid) IN ({victims}) RETURNING {key}::text"
        ).format(tbl=table_identifier(table), victims=victims, key=sql.Identifier(key))
    ).fetchall()
    if rows:
        log.info("suppressed %d rows in classes smaller than k=%d in %s", len(rows), k, table)
    return [str(r[0]) for r in rows]
