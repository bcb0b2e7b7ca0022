-- Detection results per run: counts per entity per column, never values.
CREATE TABLE IF NOT EXISTS governance.scan_results (
  id          bigserial PRIMARY KEY,
  run_id      text NOT NULL,
  dataset     text NOT NULL,
  "column"    text NOT NULL,
  -- PII entity, FREE_TEXT, IDENTIFIER, or NONE when nothing was found.
  entity      text NOT NULL,
  count       bigint NOT NULL DEFAULT 0 CHECK (count >= 0),
  hit_rate    double precision CHECK (hit_rate BETWEEN 0 AND 1),
  confidence  double precision CHECK (confidence BETWEEN 0 AND 1),
  created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS scan_results_run ON governance.scan_results (run_id);
CREATE INDEX IF NOT EXISTS scan_results_dataset ON governance.scan_results (dataset, created_at);

GRANT SELECT ON governance.scan_results TO veilflow_auditor, veilflow_steward;
GRANT INSERT ON governance.scan_results TO veilflow_pipeline;
GRANT USAGE ON SEQUENCE governance.scan_results_id_seq TO veilflow_pipeline;
