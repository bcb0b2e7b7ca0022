"""CLI command groups; each module's ``register(app)`` adds its commands to ``veilflow``.

One module per area so that each area's commands live beside nothing else:
``detect`` (scan, detect, policy draft), ``vault`` (keys, access, reidentify, audit),
``validate`` (validate, risk), ``lineage`` (lineage show/export).
"""
