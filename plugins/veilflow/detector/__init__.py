"""The project's trained detector: training on the corpus's train split, evaluation on
its heldout split, and versions kept in the state folder (``registry``)."""
