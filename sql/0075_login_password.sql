-- A login that `veilflow access grant --create` makes gets its first password with it, so a
-- person can log in at once instead of waiting for a superuser's ALTER ROLE.
--
-- The caller sends a SCRAM-SHA-256 verifier, computed on its side: the password never reaches
-- the server or its log. The password is set only on a login this very call creates: an
-- admin can never set the password of an existing login (a service login, another person's)
-- and so log in as it.
DROP FUNCTION governance_api.grant_role(text, text, boolean);

CREATE FUNCTION governance_api.grant_role(p_login text, p_role text,
                                          p_create boolean DEFAULT false,
                                          p_verifier text DEFAULT NULL)
RETURNS boolean
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE created boolean := false;
BEGIN
  IF p_verifier IS NOT NULL THEN
    IF NOT p_create THEN
      RAISE EXCEPTION 'a password is set only on a login that the grant creates'
        USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF p_verifier !~ '^SCRAM-SHA-256\$[0-9]+:[A-Za-z0-9+/=]+\$[A-Za-z0-9+/=]+:[A-Za-z0-9+/=]+$' THEN
      RAISE EXCEPTION 'a password is given as a SCRAM-SHA-256 verifier, never in the clear'
        USING ERRCODE = 'invalid_parameter_value';
    END IF;
  END IF;
  IF p_create AND pg_has_role(governance.acting_role(), 'veilflow_admin', 'USAGE')
     AND NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = p_login) THEN
    IF p_verifier IS NULL THEN
      EXECUTE format('CREATE ROLE %I LOGIN', p_login);
    ELSE
      EXECUTE format('CREATE ROLE %I LOGIN PASSWORD %L', p_login, p_verifier);
    END IF;
    created := true;
  ELSIF p_verifier IS NOT NULL AND EXISTS (SELECT 1 FROM pg_roles WHERE rolname = p_login) THEN
    RAISE EXCEPTION 'login % exists; its password is not changed by a grant', p_login
      USING ERRCODE = 'invalid_parameter_value';
  END IF;
  PERFORM governance.check_membership_change(p_login, p_role);
  EXECUTE format('GRANT %I TO %I', p_role, p_login);
  INSERT INTO governance.audit_log (action, target, outcome, details)
    VALUES ('access.grant', p_login, 'ok',
            jsonb_build_object('role', p_role, 'login_created', created,
                               'password_set', created AND p_verifier IS NOT NULL));
  RETURN created;
END $$;

REVOKE ALL ON FUNCTION governance_api.grant_role(text, text, boolean, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION governance_api.grant_role(text, text, boolean, text) TO PUBLIC;
