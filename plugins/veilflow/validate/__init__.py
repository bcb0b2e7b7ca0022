"""The validation gate: what must hold before a candidate is published."""
