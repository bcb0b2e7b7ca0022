"""veilflow: orchestrated anonymization with governance."""
