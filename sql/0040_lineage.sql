-- The governance store of OpenLineage events: every event of every stage lands here first,
-- whatever other transport is configured, so none is lost when Marquez or a file system is
-- down. Delivery to those transports is tracked per event and retried by
-- `veilflow lineage retry`.

CREATE TABLE IF NOT EXISTS governance.lineage_events (
  event_id           bigserial PRIMARY KEY,
  run_id             text NOT NULL,           -- the veilflow run (Airflow run id or manual__…)
  ol_run_id          uuid NOT NULL,           -- the stage's OpenLineage run
  parent_run_id      uuid,                    -- the Airflow DAG run (or the veilflow run)
  parent_job         text,                    -- namespace/name of the parent job
  dataset            text NOT NULL,           -- the policy's dataset
  policy_hash        text,
  job_namespace      text NOT NULL,
  job_name           text NOT NULL,
  stage              text NOT NULL,
  event_type         text NOT NULL
    CHECK (event_type IN ('START', 'RUNNING', 'COMPLETE', 'ABORT', 'FAIL', 'OTHER')),
  event_time         timestamptz NOT NULL,
  inputs             text[] NOT NULL DEFAULT '{}',   -- dataset names (database.schema.table)
  outputs            text[] NOT NULL DEFAULT '{}',
  event              jsonb NOT NULL,          -- the event exactly as delivered
  stored_at          timestamptz NOT NULL DEFAULT now(),
  -- NULL: no transport besides this store; false: pending or failed; true: delivered.
  delivered          boolean,
  delivery_attempts  integer NOT NULL DEFAULT 0,
  delivery_error     text,
  delivered_at       timestamptz
);

-- "runs of a dataset", newest first (by policy dataset, or by any table name it touched).
CREATE INDEX IF NOT EXISTS lineage_events_dataset_time
  ON governance.lineage_events (dataset, event_time DESC);
CREATE INDEX IF NOT EXISTS lineage_events_outputs ON governance.lineage_events USING gin (outputs);
CREATE INDEX IF NOT EXISTS lineage_events_inputs ON governance.lineage_events USING gin (inputs);
CREATE INDEX IF NOT EXISTS lineage_events_run ON governance.lineage_events (run_id, event_time);
CREATE INDEX IF NOT EXISTS lineage_events_pending
  ON governance.lineage_events (event_id) WHERE delivered = false;

-- The pipeline appends events and records their delivery; it cannot rewrite an event.
GRANT SELECT, INSERT ON governance.lineage_events TO veilflow_pipeline;
GRANT UPDATE (delivered, delivery_attempts, delivery_error, delivered_at)
  ON governance.lineage_events TO veilflow_pipeline;
GRANT USAGE ON SEQUENCE governance.lineage_events_event_id_seq TO veilflow_pipeline;
GRANT SELECT ON governance.lineage_events TO veilflow_auditor, veilflow_steward, veilflow_admin;
