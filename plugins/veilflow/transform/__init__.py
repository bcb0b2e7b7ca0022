"""Transformations: a registry of small, vectorized operators (see ``base`` and ``registry``)."""
