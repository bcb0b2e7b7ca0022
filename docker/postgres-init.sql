-- Databases and service logins of the production-like stack (first start of the volume).
CREATE DATABASE veilflow;
CREATE DATABASE marquez;
CREATE ROLE marquez LOGIN PASSWORD 'marquez';
GRANT ALL PRIVILEGES ON DATABASE marquez TO marquez;
ALTER DATABASE marquez OWNER TO marquez;
-- The pipeline's own login; `veilflow db upgrade` (run by airflow-init as this login's owner)
-- creates the group roles and grants it veilflow_pipeline.
CREATE ROLE veilflow_pipeline_svc LOGIN PASSWORD 'pipeline' CREATEROLE;
ALTER DATABASE veilflow OWNER TO veilflow_pipeline_svc;
