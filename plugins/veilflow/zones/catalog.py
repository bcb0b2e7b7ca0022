"""What PostgreSQL's catalog says about source tables beyond their columns: foreign keys."""

from __future__ import annotations

from dataclasses import dataclass

import psycopg


@dataclass(frozen=True)
class CatalogForeignKey:
    """A single-column foreign key ``schema.table.column -> ref_table.ref_column``."""

    table: str
    column: str
    ref_table: str
    ref_column: str


def foreign_keys_of(conn: psycopg.Connection, schema: str, table: str) -> list[CatalogForeignKey]:
    """The single-column foreign keys of ``schema.table`` (tables as ``schema.table``)."""
    rows = conn.execute(
        """SELECT a.attname, rn.nspname || '.' || rc.relname, ra.attname
             FROM pg_constraint k
             JOIN pg_class c ON c.oid = k.conrelid
             JOIN pg_namespace n ON n.oid = c.relnamespace
             JOIN pg_attribute a ON a.attrelid = k.conrelid AND a.attnum = k.conkey[1]
             JOIN pg_class rc ON rc.oid = k.confrelid
             JOIN pg_namespace rn ON rn.oid = rc.relnamespace
             JOIN pg_attribute ra ON ra.attrelid = k.confrelid AND ra.attnum = k.confkey[1]
            WHERE k.contype = 'f' AND n.nspname = %s AND c.relname = %s
              AND cardinality(k.conkey) = 1
            ORDER BY k.conname""",
        (schema, table),
    ).fetchall()
    return [CatalogForeignKey(f"{schema}.{table}", r[0], r[1], r[2]) for r in rows]
