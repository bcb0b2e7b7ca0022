# The Airflow image the production-like stack runs: Airflow 3.3 with veilflow's locked deps.
FROM apache/airflow:3.3.2-python3.11
USER root
RUN pip install --no-cache-dir uv==0.13.9
USER airflow
COPY --chown=airflow:root pyproject.toml uv.lock README.md /opt/veilflow/
COPY --chown=airflow:root plugins /opt/veilflow/plugins
RUN cd /opt/veilflow && uv export --frozen --no-dev --no-emit-project -o /tmp/req.txt \
 && uv pip install --no-cache --python "$(which python)" -r /tmp/req.txt \
 && uv pip install --no-cache --python "$(which python)" --no-deps /opt/veilflow
