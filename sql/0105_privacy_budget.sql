-- Differentially private releases (issue 17): each dataset's total privacy budget, set by an
-- admin (never by the policy, which its author could edit), and the ledger of what each run
-- spent. Remaining = total - sum(spent), by sequential composition. Owned by
-- veilflow.privacy.budget.
CREATE TABLE IF NOT EXISTS governance.privacy_budgets (
  dataset        text PRIMARY KEY,
  epsilon_total  double precision NOT NULL CHECK (epsilon_total >= 0),
  delta_total    double precision NOT NULL DEFAULT 0 CHECK (delta_total >= 0 AND delta_total < 1),
  set_by         text NOT NULL DEFAULT session_user,
  set_at         timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS governance.privacy_spend (
  run_id         text NOT NULL REFERENCES governance.runs (run_id) ON DELETE RESTRICT,
  release        text NOT NULL,
  dataset        text NOT NULL REFERENCES governance.privacy_budgets (dataset),
  table_name     text NOT NULL,
  statistic      text NOT NULL,
  epsilon        double precision NOT NULL CHECK (epsilon > 0),
  delta          double precision NOT NULL DEFAULT 0 CHECK (delta >= 0),
  spent_at       timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (run_id, release)
);
CREATE INDEX IF NOT EXISTS privacy_spend_dataset ON governance.privacy_spend (dataset);

-- The pipeline reads the budget (runs of a dataset spend one at a time, under a transaction
-- advisory lock) and appends to the
-- ledger; it can neither raise a budget nor erase what was spent.
GRANT SELECT ON governance.privacy_budgets TO veilflow_pipeline;
GRANT SELECT, INSERT ON governance.privacy_spend TO veilflow_pipeline;
GRANT SELECT, INSERT, UPDATE ON governance.privacy_budgets TO veilflow_admin;
GRANT SELECT ON governance.privacy_budgets, governance.privacy_spend
  TO veilflow_steward, veilflow_auditor, veilflow_admin, veilflow_viewer;
