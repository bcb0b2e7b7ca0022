-- Incremental runs (ADR 0017): for each published run of a policy with `incremental:`, the
-- cursor range it took and a digest of every source row published so far, by block of the
-- cursor's range: the next run recomputes the digests on the source below the cursor and
-- refuses to run when a block changed (an update, a delete, a row added below the cursor).
--
-- Holds names, counts, cursor positions and 64-bit digests of blocks of rows; never a row's
-- value (the cursor column's bounds are the positions a run reports, as its manifest does).
-- Written by publish in the transaction that appends the rows.
CREATE TABLE IF NOT EXISTS governance.published_cursors (
  dataset        text NOT NULL,
  run_id         text NOT NULL REFERENCES governance.runs (run_id),
  cursor_column  text NOT NULL,
  cursor_type    text NOT NULL,
  -- The run took the rows with cursor_from < cursor <= cursor_to (cursor_from NULL: the
  -- first, full run). Positions as ISO text (to_jsonb), read back with cursor_type.
  cursor_from    text,
  cursor_to      text,
  rows_taken     bigint NOT NULL,
  -- Source rows with cursor <= cursor_to, and their digest per block:
  -- [{"from": <lowest cursor of the block>, "rows": n, "digest": <signed 64-bit>}, ...]
  rows_total     bigint NOT NULL,
  blocks         jsonb NOT NULL,
  -- pg_current_snapshot() of the run's extract: the next run's proof that the rows below
  -- the cursor are unchanged (a row written since has an xmin this snapshot does not see).
  source_snapshot text NOT NULL,
  published_at   timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (dataset, run_id)
);
CREATE INDEX IF NOT EXISTS published_cursors_latest
  ON governance.published_cursors (dataset, published_at DESC);

GRANT SELECT, INSERT ON governance.published_cursors TO veilflow_pipeline;
GRANT SELECT ON governance.published_cursors
  TO veilflow_steward, veilflow_auditor, veilflow_admin, veilflow_viewer;
