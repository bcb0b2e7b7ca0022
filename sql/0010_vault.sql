-- The key vault (wrapped data keys, their versions and states) and the hash-chained,
-- append-only audit log. Key material never reaches the database in clear: data keys arrive
-- wrapped (AES-256-GCM under the master key, key id and version bound as associated data).

-- Entry points any login may call; each function checks its caller itself, by the role
-- membership of the login that connected (session_user), never by a name passed in.
CREATE SCHEMA IF NOT EXISTS governance_api;
REVOKE ALL ON SCHEMA governance_api FROM PUBLIC;
GRANT USAGE ON SCHEMA governance_api TO PUBLIC;

-- ------------------------------------------------------------------------- audit log
CREATE TABLE IF NOT EXISTS governance.audit_log (
  seq        bigint PRIMARY KEY,
  at         timestamptz NOT NULL,
  actor      text NOT NULL,
  action     text NOT NULL,
  target     text NOT NULL,
  purpose    text,
  count      bigint,
  outcome    text NOT NULL CHECK (outcome IN ('ok', 'denied', 'error')),
  details    jsonb NOT NULL DEFAULT '{}'::jsonb,
  prev_hash  text NOT NULL,
  row_hash   text NOT NULL
);
CREATE INDEX IF NOT EXISTS audit_log_at ON governance.audit_log (at DESC);

-- Every insert is chained here, whoever inserts: seq, time, actor and both hashes are
-- computed by the database, so no caller can choose them. The payload expression is
-- repeated verbatim in veilflow.vault.audit (verification recomputes it independently).
CREATE OR REPLACE FUNCTION governance.audit_chain() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  last_seq bigint;
  last_hash text;
BEGIN
  -- One appender at a time until its transaction ends: the chain has no forks.
  PERFORM pg_advisory_xact_lock(1986359916);
  SELECT a.seq, a.row_hash INTO last_seq, last_hash
    FROM governance.audit_log a ORDER BY a.seq DESC LIMIT 1;
  NEW.seq := coalesce(last_seq, 0) + 1;
  NEW.at := clock_timestamp();
  NEW.actor := session_user;
  NEW.details := coalesce(NEW.details, '{}'::jsonb);
  NEW.prev_hash := coalesce(last_hash, repeat('0', 64));
  NEW.row_hash := encode(sha256(convert_to(NEW.prev_hash || jsonb_build_array(
      NEW.seq, to_char(NEW.at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
      NEW.actor, NEW.action, NEW.target, NEW.purpose, NEW.count, NEW.outcome,
      NEW.details)::text, 'UTF8')), 'hex');
  RETURN NEW;
END $$;

CREATE OR REPLACE FUNCTION governance.refuse_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION '%.% is append-only: % refused', TG_TABLE_SCHEMA, TG_TABLE_NAME, TG_OP
    USING ERRCODE = 'insufficient_privilege';
END $$;

DROP TRIGGER IF EXISTS audit_log_chain ON governance.audit_log;
CREATE TRIGGER audit_log_chain BEFORE INSERT ON governance.audit_log
  FOR EACH ROW EXECUTE FUNCTION governance.audit_chain();
DROP TRIGGER IF EXISTS audit_log_append_only ON governance.audit_log;
CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE OR TRUNCATE
  ON governance.audit_log FOR EACH STATEMENT EXECUTE FUNCTION governance.refuse_change();

REVOKE ALL ON governance.audit_log FROM PUBLIC;
GRANT SELECT ON governance.audit_log TO veilflow_auditor;

-- The only way in for everyone but the owner. Any login may leave a trace (a denied
-- attempt by a login without any veilflow role is recorded too); the actor is always the
-- login that connected.
CREATE OR REPLACE FUNCTION governance_api.append_audit(
  p_action text, p_target text, p_purpose text, p_count bigint, p_outcome text,
  p_details jsonb) RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE s bigint;
BEGIN
  INSERT INTO governance.audit_log (action, target, purpose, count, outcome, details)
    VALUES (p_action, p_target, p_purpose, p_count, p_outcome, coalesce(p_details, '{}'))
    RETURNING seq INTO s;
  RETURN s;
END $$;
REVOKE ALL ON FUNCTION governance_api.append_audit(text, text, text, bigint, text, jsonb)
  FROM PUBLIC;
GRANT EXECUTE ON FUNCTION governance_api.append_audit(text, text, text, bigint, text, jsonb)
  TO PUBLIC;

-- ------------------------------------------------------------------------- data keys
CREATE TABLE IF NOT EXISTS governance.data_keys (
  dataset       text NOT NULL,
  purpose       text NOT NULL CHECK (purpose IN ('token', 'ff1', 'surrogate', 'date_shift')),
  version       integer NOT NULL CHECK (version >= 1),
  key_id        text GENERATED ALWAYS AS (dataset || '/' || purpose) STORED,
  state         text NOT NULL DEFAULT 'active'
                CHECK (state IN ('active', 'retired', 'disabled', 'destroyed')),
  -- nonce || AES-256-GCM(master key, data key, aad = "veilflow/data-key/<key_id>/v<version>");
  -- NULL exactly when the version was destroyed (crypto-shredding).
  wrapped       bytea,
  master_key_id text NOT NULL,
  created_at    timestamptz NOT NULL DEFAULT now(),
  created_by    text NOT NULL DEFAULT session_user,
  changed_at    timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (dataset, purpose, version),
  CHECK ((state = 'destroyed') = (wrapped IS NULL))
);
CREATE UNIQUE INDEX IF NOT EXISTS data_keys_one_active ON governance.data_keys (dataset, purpose)
  WHERE state = 'active';

-- Rules a plain GRANT cannot express. Keys are destroyed, never deleted; a destroyed version
-- stays destroyed; only admins add versions beyond the first (the pipeline creates version 1
-- of a key on first use).
CREATE OR REPLACE FUNCTION governance.data_keys_guard() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  IF TG_OP IN ('DELETE', 'TRUNCATE') THEN
    RAISE EXCEPTION 'data keys are never deleted; destroy a version instead'
      USING ERRCODE = 'insufficient_privilege';
  END IF;
  IF TG_OP = 'INSERT' THEN
    IF NEW.version <> 1 AND NOT pg_has_role(session_user, 'veilflow_admin', 'USAGE') THEN
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

DROP TRIGGER IF EXISTS data_keys_guard_row ON governance.data_keys;
CREATE TRIGGER data_keys_guard_row BEFORE INSERT OR UPDATE OR DELETE ON governance.data_keys
  FOR EACH ROW EXECUTE FUNCTION governance.data_keys_guard();
DROP TRIGGER IF EXISTS data_keys_guard_truncate ON governance.data_keys;
CREATE TRIGGER data_keys_guard_truncate BEFORE TRUNCATE ON governance.data_keys
  FOR EACH STATEMENT EXECUTE FUNCTION governance.data_keys_guard();

-- Every change of a key version is audited in the same transaction, whoever makes it.
CREATE OR REPLACE FUNCTION governance.data_keys_audit() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE act text;
BEGIN
  IF TG_OP = 'INSERT' THEN
    act := CASE WHEN NEW.version = 1 THEN 'key.create' ELSE 'key.rotate' END;
  ELSIF NEW.state IS DISTINCT FROM OLD.state THEN
    act := 'key.' || CASE NEW.state WHEN 'active' THEN 'enable' WHEN 'retired' THEN 'retire'
                                   WHEN 'disabled' THEN 'disable' ELSE 'destroy' END;
  ELSIF NEW.wrapped IS DISTINCT FROM OLD.wrapped
        OR NEW.master_key_id IS DISTINCT FROM OLD.master_key_id THEN
    act := 'key.rewrap';
  ELSE
    RETURN NULL;
  END IF;
  INSERT INTO governance.audit_log (action, target, outcome, details)
    VALUES (act, NEW.key_id || '@v' || NEW.version, 'ok',
            jsonb_build_object('state', NEW.state, 'master_key_id', NEW.master_key_id));
  RETURN NULL;
END $$;

DROP TRIGGER IF EXISTS data_keys_audited ON governance.data_keys;
CREATE TRIGGER data_keys_audited AFTER INSERT OR UPDATE ON governance.data_keys
  FOR EACH ROW EXECUTE FUNCTION governance.data_keys_audit();

REVOKE ALL ON governance.data_keys FROM PUBLIC;
GRANT SELECT, INSERT ON governance.data_keys TO veilflow_pipeline;
GRANT SELECT ON governance.data_keys TO veilflow_steward;
GRANT SELECT, INSERT, UPDATE ON governance.data_keys TO veilflow_admin;

-- ------------------------------------------------------------------------- access
CREATE OR REPLACE FUNCTION governance.check_membership_change(p_login text, p_role text)
RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  IF NOT pg_has_role(session_user, 'veilflow_admin', 'USAGE') THEN
    RAISE EXCEPTION 'only veilflow_admin may grant or revoke roles'
      USING ERRCODE = 'insufficient_privilege';
  END IF;
  IF p_role NOT IN ('veilflow_pipeline', 'veilflow_steward', 'veilflow_ml_engineer',
                    'veilflow_auditor', 'veilflow_admin') THEN
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
  IF p_create AND pg_has_role(session_user, 'veilflow_admin', 'USAGE')
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

CREATE OR REPLACE FUNCTION governance_api.revoke_role(p_login text, p_role text)
RETURNS boolean
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  grantor text;
  was_member boolean := false;
BEGIN
  PERFORM governance.check_membership_change(p_login, p_role);
  FOR grantor IN
    SELECT g.rolname FROM pg_auth_members m
      JOIN pg_roles r ON r.oid = m.roleid JOIN pg_roles u ON u.oid = m.member
      JOIN pg_roles g ON g.oid = m.grantor
     WHERE r.rolname = p_role AND u.rolname = p_login
  LOOP
    EXECUTE format('REVOKE %I FROM %I GRANTED BY %I', p_role, p_login, grantor);
    was_member := true;
  END LOOP;
  INSERT INTO governance.audit_log (action, target, outcome, details)
    VALUES ('access.revoke', p_login, 'ok',
            jsonb_build_object('role', p_role, 'was_member', was_member));
  RETURN was_member;
END $$;

REVOKE ALL ON FUNCTION governance.check_membership_change(text, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION governance_api.grant_role(text, text, boolean) FROM PUBLIC;
REVOKE ALL ON FUNCTION governance_api.revoke_role(text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION governance_api.grant_role(text, text, boolean) TO PUBLIC;
GRANT EXECUTE ON FUNCTION governance_api.revoke_role(text, text) TO PUBLIC;
