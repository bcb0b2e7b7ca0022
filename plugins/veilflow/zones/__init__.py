"""PostgreSQL: the embedded server, connections, migrations, zone roles and grants, chunked
COPY I/O, staging tables, atomic publish and quarantine. Knows nothing of Airflow."""
