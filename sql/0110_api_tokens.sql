-- Tokens of the scrub API (`veilflow serve`): one per calling service, scoped to one dataset's
-- free-text column (its detection settings and operators), issued and revoked by an admin.
--
-- Only the SHA-256 of a token is stored: a token is 32 random bytes, so a plain hash cannot be
-- reversed by guessing, and a stolen table grants nothing. The pipeline's login, which the
-- service runs as, can look a token up by its hash (governance_api.api_token_scope) and
-- nothing else: it cannot list, issue or revoke tokens. Admins and auditors list them
-- without their hashes. Issue and revoke are audited in the same transaction; a refused
-- attempt is audited by the command before it is raised (veilflow.vault.access.deny).

CREATE TABLE IF NOT EXISTS governance.api_tokens (
  name            text PRIMARY KEY CHECK (name ~ '^[a-z0-9][a-z0-9_.-]{0,62}$'),
  token_sha256    bytea NOT NULL UNIQUE CHECK (length(token_sha256) = 32),
  dataset         text NOT NULL,
  column_name     text NOT NULL,
  rate_per_second integer NOT NULL CHECK (rate_per_second BETWEEN 1 AND 100000),
  created_at      timestamptz NOT NULL DEFAULT now(),
  created_by      text NOT NULL DEFAULT session_user,
  revoked_at      timestamptz,
  revoked_by      text
);

REVOKE ALL ON governance.api_tokens FROM PUBLIC;
GRANT SELECT (name, dataset, column_name, rate_per_second, created_at, created_by, revoked_at,
              revoked_by)
  ON governance.api_tokens TO veilflow_admin, veilflow_auditor;

CREATE OR REPLACE FUNCTION governance_api.issue_api_token(
  p_name text, p_sha256 bytea, p_dataset text, p_column text, p_rate integer)
RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  IF NOT pg_has_role(governance.acting_role(), 'veilflow_admin', 'USAGE') THEN
    RAISE EXCEPTION 'only veilflow_admin may issue API tokens'
      USING ERRCODE = 'insufficient_privilege';
  END IF;
  IF EXISTS (SELECT 1 FROM governance.api_tokens WHERE name = p_name) THEN
    RAISE EXCEPTION 'an API token named % exists; revoke it and issue one under a new name',
      p_name USING ERRCODE = 'unique_violation';
  END IF;
  INSERT INTO governance.api_tokens (name, token_sha256, dataset, column_name, rate_per_second)
    VALUES (p_name, p_sha256, p_dataset, p_column, p_rate);
  INSERT INTO governance.audit_log (action, target, outcome, details)
    VALUES ('api_token.issue', p_dataset, 'ok',
            jsonb_build_object('token', p_name, 'column', p_column, 'rate_per_second', p_rate));
END $$;

CREATE OR REPLACE FUNCTION governance_api.revoke_api_token(p_name text)
RETURNS boolean
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE d text;
BEGIN
  IF NOT pg_has_role(governance.acting_role(), 'veilflow_admin', 'USAGE') THEN
    RAISE EXCEPTION 'only veilflow_admin may revoke API tokens'
      USING ERRCODE = 'insufficient_privilege';
  END IF;
  UPDATE governance.api_tokens SET revoked_at = now(), revoked_by = session_user
    WHERE name = p_name AND revoked_at IS NULL
    RETURNING dataset INTO d;
  IF d IS NULL THEN
    RETURN false;
  END IF;
  INSERT INTO governance.audit_log (action, target, outcome, details)
    VALUES ('api_token.revoke', d, 'ok', jsonb_build_object('token', p_name));
  RETURN true;
END $$;

-- What the service asks for each token it has not seen lately: the scope of a live token, or
-- no row. A lookup by a full 32-byte hash only; nothing to enumerate.
CREATE OR REPLACE FUNCTION governance_api.api_token_scope(p_sha256 bytea)
RETURNS TABLE (name text, dataset text, column_name text, rate_per_second integer)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
  SELECT t.name, t.dataset, t.column_name, t.rate_per_second
    FROM governance.api_tokens t
   WHERE t.token_sha256 = p_sha256 AND t.revoked_at IS NULL
$$;

REVOKE ALL ON FUNCTION governance_api.issue_api_token(text, bytea, text, text, integer),
                       governance_api.revoke_api_token(text),
                       governance_api.api_token_scope(bytea) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION governance_api.issue_api_token(text, bytea, text, text, integer),
                          governance_api.revoke_api_token(text) TO veilflow_admin;
GRANT EXECUTE ON FUNCTION governance_api.api_token_scope(bytea) TO veilflow_pipeline;
