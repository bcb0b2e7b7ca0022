"""The only part of veilflow that imports Airflow: DAG factory, operators, the plugin.

This package's ``__init__`` imports nothing, so ``veilflow.airflow.env`` can be used
without Airflow installed or configured.
"""
