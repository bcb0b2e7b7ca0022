-- veilflow_viewer: who may look at runs and lineage and nothing else (the governance UI's
-- lowest role). No zone, no audit log, no keys.
DO $$
BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'veilflow_viewer') THEN
    CREATE ROLE veilflow_viewer NOLOGIN;
  END IF;
END $$;

GRANT USAGE ON SCHEMA governance TO veilflow_viewer;
GRANT SELECT ON governance.runs, governance.published_versions, governance.quarantined,
  governance.run_chunks, governance.lineage_events TO veilflow_viewer;

-- Admins may now grant it like any other veilflow role.
CREATE OR REPLACE FUNCTION governance.check_membership_change(p_login text, p_role text)
RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  IF NOT pg_has_role(session_user, 'veilflow_admin', 'USAGE') THEN
    RAISE EXCEPTION 'only veilflow_admin may grant or revoke roles'
      USING ERRCODE = 'insufficient_privilege';
  END IF;
  IF p_role NOT IN ('veilflow_pipeline', 'veilflow_steward', 'veilflow_ml_engineer',
                    'veilflow_auditor', 'veilflow_admin', 'veilflow_viewer') THEN
    RAISE EXCEPTION 'unknown role %', p_role USING ERRCODE = 'invalid_parameter_value';
  END IF;
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = p_login) THEN
    RAISE EXCEPTION 'no login %', p_login USING ERRCODE = 'undefined_object';
  END IF;
  IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = p_login AND (NOT rolcanlogin OR rolsuper))
  THEN
    RAISE EXCEPTION '% is not a login that roles are granted to (a group role or superuser)',
      p_login USING ERRCODE = 'invalid_parameter_value';
  END IF;
END $$;
REVOKE ALL ON FUNCTION governance.check_membership_change(text, text) FROM PUBLIC;
