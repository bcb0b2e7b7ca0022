"""In-memory doubles of veilflow's ports, for tests of code that uses them.

``LocalKeyProvider`` hands out data keys derived from one secret (no database, no vault);
``InMemoryLineage`` collects lineage events instead of storing and sending them.
"""

from veilflow.lineage.memory import InMemoryLineage
from veilflow.transform.keys import LocalKeyProvider

__all__ = ["InMemoryLineage", "LocalKeyProvider"]
