-- Re-identification risk over time (issue 17): one row per gated run of a dataset, so the
-- trend of a growing table toward re-identifiability can be seen and gated. Counts and
-- shares only, never a value. Owned by veilflow.privacy.history.
CREATE TABLE IF NOT EXISTS governance.risk_history (
  run_id            text PRIMARY KEY REFERENCES governance.runs (run_id) ON DELETE CASCADE,
  dataset           text NOT NULL,
  measured_at       timestamptz NOT NULL DEFAULT now(),
  rows              bigint NOT NULL,
  k                 integer,
  l                 integer,
  t                 double precision,
  -- Share of published records in equivalence classes smaller than the risk's k.
  prosecutor_risk   double precision NOT NULL,
  -- The same share before suppression: how far the source itself has drifted.
  source_risk       double precision NOT NULL,
  -- Share of the auxiliary records that match exactly one published record.
  linkage_risk      double precision,
  passed            boolean NOT NULL,
  details           jsonb NOT NULL DEFAULT '{}'::jsonb
);
CREATE INDEX IF NOT EXISTS risk_history_dataset ON governance.risk_history (dataset, measured_at);

GRANT SELECT, INSERT, UPDATE ON governance.risk_history TO veilflow_pipeline;
GRANT SELECT ON governance.risk_history
  TO veilflow_steward, veilflow_auditor, veilflow_admin, veilflow_viewer;
