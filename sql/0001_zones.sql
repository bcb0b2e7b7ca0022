-- Zones as schemas, duties as group roles, and the grants that enforce who reads what.
-- Group roles are NOLOGIN; people and services get logins that are members of them
-- (`veilflow access grant <login> <role>`).

DO $$
DECLARE r text;
BEGIN
  FOREACH r IN ARRAY ARRAY['veilflow_pipeline', 'veilflow_steward', 'veilflow_ml_engineer',
                           'veilflow_auditor', 'veilflow_admin'] LOOP
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = r) THEN
      EXECUTE format('CREATE ROLE %I NOLOGIN', r);
    END IF;
  END LOOP;
END $$;

CREATE SCHEMA IF NOT EXISTS restricted;
CREATE SCHEMA IF NOT EXISTS staging;
CREATE SCHEMA IF NOT EXISTS anonymized;
CREATE SCHEMA IF NOT EXISTS quarantine;
CREATE SCHEMA IF NOT EXISTS governance;

-- Nobody but the owner and the roles below may even look into a zone.
REVOKE ALL ON SCHEMA restricted, staging, anonymized, quarantine, governance FROM PUBLIC;

-- restricted: raw personal data. The pipeline reads it to anonymize; stewards read it.
GRANT USAGE ON SCHEMA restricted TO veilflow_pipeline, veilflow_steward;
GRANT SELECT ON ALL TABLES IN SCHEMA restricted TO veilflow_pipeline, veilflow_steward;
ALTER DEFAULT PRIVILEGES IN SCHEMA restricted
  GRANT SELECT ON TABLES TO veilflow_pipeline, veilflow_steward;

-- staging: the pipeline's work area (snapshots and candidates). Nobody else.
GRANT USAGE, CREATE ON SCHEMA staging TO veilflow_pipeline;

-- anonymized: what ML engineers may read. The pipeline publishes into it.
GRANT USAGE, CREATE ON SCHEMA anonymized TO veilflow_pipeline;
GRANT USAGE ON SCHEMA anonymized TO veilflow_ml_engineer, veilflow_steward;
GRANT SELECT ON ALL TABLES IN SCHEMA anonymized TO veilflow_ml_engineer, veilflow_steward;
ALTER DEFAULT PRIVILEGES IN SCHEMA anonymized
  GRANT SELECT ON TABLES TO veilflow_ml_engineer, veilflow_steward;

-- quarantine: candidates a gate refused, for stewards to review.
GRANT USAGE, CREATE ON SCHEMA quarantine TO veilflow_pipeline;
GRANT USAGE ON SCHEMA quarantine TO veilflow_steward;
GRANT SELECT ON ALL TABLES IN SCHEMA quarantine TO veilflow_steward;
ALTER DEFAULT PRIVILEGES IN SCHEMA quarantine GRANT SELECT ON TABLES TO veilflow_steward;

-- governance: runs, lineage, audit, keys. Each table grants its own rights below / later.
GRANT USAGE ON SCHEMA governance TO veilflow_pipeline, veilflow_steward, veilflow_auditor,
  veilflow_admin;

CREATE TABLE IF NOT EXISTS governance.runs (
  run_id        text PRIMARY KEY,
  dataset       text NOT NULL,
  policy_hash   text NOT NULL,
  status        text NOT NULL CHECK (status IN ('running', 'published', 'quarantined', 'failed')),
  started_at    timestamptz NOT NULL DEFAULT now(),
  finished_at   timestamptz,
  rows_in       bigint,
  rows_out      bigint,
  manifest      jsonb NOT NULL DEFAULT '{}'::jsonb,
  error         text
);
CREATE INDEX IF NOT EXISTS runs_dataset_started ON governance.runs (dataset, started_at DESC);

-- One row per published version of an anonymized table.
CREATE TABLE IF NOT EXISTS governance.published_versions (
  dataset       text NOT NULL,
  target_table  text NOT NULL,
  run_id        text NOT NULL REFERENCES governance.runs (run_id),
  published_at  timestamptz NOT NULL DEFAULT now(),
  rows          bigint NOT NULL,
  PRIMARY KEY (dataset, run_id)
);

CREATE TABLE IF NOT EXISTS governance.quarantined (
  dataset        text NOT NULL,
  run_id         text NOT NULL REFERENCES governance.runs (run_id),
  quarantine_table text,
  reasons        jsonb NOT NULL,
  quarantined_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (dataset, run_id)
);

GRANT SELECT, INSERT, UPDATE ON governance.runs TO veilflow_pipeline;
GRANT SELECT, INSERT ON governance.published_versions, governance.quarantined TO veilflow_pipeline;
GRANT SELECT ON governance.runs, governance.published_versions, governance.quarantined
  TO veilflow_steward, veilflow_auditor, veilflow_admin;

-- Per-chunk results of a run, so any task can rebuild the run's manifest (XCom carries
-- only references and counts).
CREATE TABLE IF NOT EXISTS governance.run_chunks (
  run_id     text NOT NULL REFERENCES governance.runs (run_id) ON DELETE CASCADE,
  chunk      integer NOT NULL,
  rows       bigint NOT NULL,
  counters   jsonb NOT NULL DEFAULT '{}'::jsonb,
  finished_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (run_id, chunk)
);
GRANT SELECT, INSERT, UPDATE, DELETE ON governance.run_chunks TO veilflow_pipeline;
GRANT SELECT ON governance.run_chunks TO veilflow_steward, veilflow_auditor, veilflow_admin;
