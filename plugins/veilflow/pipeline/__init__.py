"""The stage functions DAG tasks call, the in-process runner, and the run manifest.

Every stage opens its own connection and reads what it needs from PostgreSQL, so the stages
run the same in one process (``veilflow run``) and as separate Airflow tasks.
"""
