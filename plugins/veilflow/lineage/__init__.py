"""OpenLineage lineage for every stage of every run: event and facet builders, the
governance store, transports, and the column-lineage view the CLI and UI read.

The pipeline calls ``veilflow.lineage.emitter.emit_stage``; readers use
``veilflow.lineage.view``. See ``README.md`` in this folder for the decisions.
"""
