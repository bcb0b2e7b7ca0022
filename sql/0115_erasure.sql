-- Erasure requests (`veilflow erase`): a data subject's rows leave the anonymized zone and the
-- quarantine, and stay out of every later run.
--
-- A request names the subject by the tokens its key has in the published tables (the key
-- column's keyed HMAC under each readable version of the dataset's token key), never by the
-- key itself. A steward records it; the pipeline's login applies it, because only the
-- pipeline may change its tables. Both steps are audited, with counts only.

CREATE TABLE IF NOT EXISTS governance.erasure_requests (
  id            bigserial PRIMARY KEY,
  dataset       text NOT NULL,
  key_column    text NOT NULL,
  subject_tokens text[] NOT NULL CHECK (cardinality(subject_tokens) BETWEEN 1 AND 64),
  reason        text NOT NULL CHECK (length(btrim(reason)) >= 8),
  requested_by  text NOT NULL DEFAULT session_user,
  requested_at  timestamptz NOT NULL DEFAULT now(),
  applied_at    timestamptz,
  applied_by    text,
  removed       jsonb
);
CREATE INDEX IF NOT EXISTS erasure_requests_dataset ON governance.erasure_requests (dataset);

REVOKE ALL ON governance.erasure_requests FROM PUBLIC;
GRANT SELECT, UPDATE (applied_at, applied_by, removed)
  ON governance.erasure_requests TO veilflow_pipeline;
GRANT SELECT (id, dataset, key_column, reason, requested_by, requested_at, applied_at,
              applied_by, removed)
  ON governance.erasure_requests TO veilflow_steward, veilflow_auditor, veilflow_admin;

CREATE OR REPLACE FUNCTION governance_api.request_erasure(
  p_dataset text, p_key_column text, p_tokens text[], p_reason text)
RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE new_id bigint;
BEGIN
  IF NOT pg_has_role(governance.acting_role(), 'veilflow_steward', 'USAGE') THEN
    RAISE EXCEPTION 'only veilflow_steward may request an erasure'
      USING ERRCODE = 'insufficient_privilege';
  END IF;
  INSERT INTO governance.erasure_requests (dataset, key_column, subject_tokens, reason)
    VALUES (p_dataset, p_key_column, p_tokens, p_reason)
    RETURNING id INTO new_id;
  INSERT INTO governance.audit_log (action, target, purpose, count, outcome, details)
    VALUES ('erasure.request', p_dataset, p_reason, 1, 'ok',
            jsonb_build_object('request', new_id, 'key_versions', cardinality(p_tokens)));
  RETURN new_id;
END $$;

REVOKE ALL ON FUNCTION governance_api.request_erasure(text, text, text[], text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION governance_api.request_erasure(text, text, text[], text)
  TO veilflow_steward;
