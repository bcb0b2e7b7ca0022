-- The pipeline runs as a login of its own (veilflow_pipeline_svc), not as the superuser.

-- Publishing and quarantining again for the same run (a retried task) updates the run's row.
GRANT UPDATE (rows, published_at) ON governance.published_versions TO veilflow_pipeline;
GRANT UPDATE (quarantine_table, reasons, quarantined_at) ON governance.quarantined
  TO veilflow_pipeline;

-- Tables an earlier superuser-run pipeline created in its zones pass to veilflow_pipeline, so
-- the pipeline's login can replace a published version or drop a snapshot it left.
DO $$
DECLARE t record;
BEGIN
  FOR t IN
    SELECT n.nspname, c.relname FROM pg_class c
      JOIN pg_namespace n ON n.oid = c.relnamespace
      JOIN pg_roles o ON o.oid = c.relowner
     WHERE n.nspname IN ('staging', 'anonymized', 'quarantine')
       AND c.relkind IN ('r', 'p') AND o.rolsuper AND NOT c.relispartition
  LOOP
    EXECUTE format('ALTER TABLE %I.%I OWNER TO veilflow_pipeline', t.nspname, t.relname);
  END LOOP;
END $$;
