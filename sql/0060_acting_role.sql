-- Rights are checked on the role in force, not only on the login that connected.
--
-- A login may be a member of a group role WITH INHERIT FALSE, SET TRUE (PostgreSQL 16+): it
-- holds none of the group's rights until it runs SET ROLE, as the UI's service login does for
-- each request. pg_has_role(session_user, ...) cannot see such a membership, and after SET
-- ROLE session_user is still the login, so the checks of 0010 refused it. They now ask
-- governance.acting_role(): the role taken with SET ROLE (the "role" setting, which a
-- SECURITY DEFINER function does not change), else the login. A login that inherits its
-- group (the usual GRANT) passes as before; one that only may SET it passes only after
-- SET ROLE. The audit actor and created_by stay session_user: who connected.

CREATE OR REPLACE FUNCTION governance.acting_role() RETURNS name
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
  SELECT CASE current_setting('role') WHEN 'none' THEN session_user
         ELSE current_setting('role')::name END
$$;
COMMENT ON FUNCTION governance.acting_role() IS
  'The role whose rights are in force for the caller: the role taken with SET ROLE, else the login (session_user). Unchanged inside SECURITY DEFINER functions.';

-- As in 0010 (and 0050 for check_membership_change), with the admin check on the role in force.
CREATE OR REPLACE FUNCTION governance.data_keys_guard() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  IF TG_OP IN ('DELETE', 'TRUNCATE') THEN
    RAISE EXCEPTION 'data keys are never deleted; destroy a version instead'
      USING ERRCODE = 'insufficient_privilege';
  END IF;
  IF TG_OP = 'INSERT' THEN
    IF NEW.version <> 1
       AND NOT pg_has_role(governance.acting_role(), 'veilflow_admin', 'USAGE') THEN
      RAISE EXCEPTION 'only veilflow_admin may add key versions'
        USING ERRCODE = 'insufficient_privilege';
    END IF;
    NEW.created_by := session_user;
    NEW.created_at := now();
  ELSE
    IF OLD.state = 'destroyed' THEN
      RAISE EXCEPTION 'key %@v% was destroyed; it cannot change', OLD.key_id, OLD.version
        USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF (NEW.dataset, NEW.purpose, NEW.version, NEW.created_at, NEW.created_by)
       IS DISTINCT FROM (OLD.dataset, OLD.purpose, OLD.version, OLD.created_at, OLD.created_by)
    THEN
      RAISE EXCEPTION 'a key version''s identity cannot change'
        USING ERRCODE = 'insufficient_privilege';
    END IF;
  END IF;
  NEW.changed_at := now();
  RETURN NEW;
END $$;

CREATE OR REPLACE FUNCTION governance.check_membership_change(p_login text, p_role text)
RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  IF NOT pg_has_role(governance.acting_role(), 'veilflow_admin', 'USAGE') THEN
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

CREATE OR REPLACE FUNCTION governance_api.grant_role(p_login text, p_role text,
                                                     p_create boolean DEFAULT false)
RETURNS boolean
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE created boolean := false;
BEGIN
  IF p_create AND pg_has_role(governance.acting_role(), 'veilflow_admin', 'USAGE')
     AND NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = p_login) THEN
    EXECUTE format('CREATE ROLE %I LOGIN', p_login);
    created := true;
  END IF;
  PERFORM governance.check_membership_change(p_login, p_role);
  EXECUTE format('GRANT %I TO %I', p_role, p_login);
  INSERT INTO governance.audit_log (action, target, outcome, details)
    VALUES ('access.grant', p_login, 'ok',
            jsonb_build_object('role', p_role, 'login_created', created));
  RETURN created;
END $$;

-- CREATE OR REPLACE keeps the grants of 0010 (EXECUTE to PUBLIC on the API, none on the
-- internal check). acting_role keeps the default EXECUTE for PUBLIC: it tells a caller
-- nothing it cannot read from current_setting('role'), and whoever writes data keys needs it.
