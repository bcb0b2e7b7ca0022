-- The audit log and the data keys hold against the database's own switches.
--
-- A trigger in its default state (ENABLE, "origin") does not fire in a session that sets
-- session_replication_role = replica, as logical replication's apply workers do to load rows
-- without side effects. Any superuser may set it, and would then rewrite the audit log or a
-- key version unchained and unaudited. ENABLE ALWAYS fires whatever the role.
ALTER TABLE governance.audit_log ENABLE ALWAYS TRIGGER audit_log_chain;
ALTER TABLE governance.audit_log ENABLE ALWAYS TRIGGER audit_log_append_only;
ALTER TABLE governance.data_keys ENABLE ALWAYS TRIGGER data_keys_guard_row;
ALTER TABLE governance.data_keys ENABLE ALWAYS TRIGGER data_keys_guard_truncate;
ALTER TABLE governance.data_keys ENABLE ALWAYS TRIGGER data_keys_audited;

-- Destroying a key version rewrites the table (VACUUM FULL) so the old wrapped bytes leave
-- its files; admins destroy keys without owning the table (veilflow.vault.keys.destroy_key).
GRANT MAINTAIN ON governance.data_keys TO veilflow_admin;
