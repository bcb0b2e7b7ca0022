"""One module per operator family; ``veilflow.transform.registry`` lists them."""
