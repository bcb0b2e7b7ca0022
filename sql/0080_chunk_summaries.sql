-- The per-chunk gate (ADR 0016): each transform task writes its chunk's gate summary (counts,
-- failures by check, the names and sizes of its hash sketches; never a value) beside the
-- chunk's row count, in the transaction that writes the chunk's partition. The gate reads
-- every chunk's summary; a chunk without one fails the gate.
--
-- The table's grants hold for the new column: the pipeline writes and reads it, stewards,
-- auditors and admins read it (0001_zones.sql).
ALTER TABLE governance.run_chunks ADD COLUMN IF NOT EXISTS summary jsonb;
