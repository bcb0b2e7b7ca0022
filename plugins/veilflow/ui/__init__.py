"""The governance UI: a FastAPI app the Airflow plugin mounts inside the Airflow UI."""
