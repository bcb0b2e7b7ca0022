"""One module per operator family; ``veilflow.registry`` lists them."""
