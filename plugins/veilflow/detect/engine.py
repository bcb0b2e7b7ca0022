"""The NLP engine: spaCy with only the components NER needs, one per process.

``load_nlp`` keeps one pipeline per model name for the life of the process; workers build
theirs once at start-up, never per chunk or per value. The scanner sits above this module,
Presidio's interface (``veilflow.detect.presidio``) above the scanner.
Each pipeline multiplies with numpy's OpenBLAS unless asked for thinc's default BLIS (the
reference): ``veilflow.detect.matmul``.
"""

from __future__ import annotations

import logging
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from veilflow.detect.matmul import Matmul, use_matmul
from veilflow.detect.offline import ensure_offline
from veilflow.errors import PolicyError

if TYPE_CHECKING:
    from spacy.language import Language

log = logging.getLogger(__name__)

#: spaCy components the NER component does not depend on in the small/medium English
#: models (their ``ner`` carries its own tok2vec).
NOT_NEEDED_FOR_NER = (
    "tok2vec",
    "tagger",
    "morphologizer",
    "parser",
    "senter",
    "attribute_ruler",
    "lemmatizer",
    "textcat",
    "entity_linker",
)


@lru_cache(maxsize=4)
def load_nlp(model: str, matmul: Matmul = "numpy") -> Language:
    """The spaCy pipeline ``model`` with only NER (loaded once per process and product)."""
    import spacy

    ensure_offline()
    if not spacy.util.is_package(model):
        raise PolicyError(
            f"spaCy model {model!r} is not installed; install its wheel "
            "(nothing is downloaded at run time)",
            field="detection.model",
        )
    nlp = spacy.load(model, exclude=list(NOT_NEEDED_FOR_NER))
    if "ner" not in nlp.pipe_names:
        raise PolicyError(f"spaCy model {model!r} has no ner component", field="detection.model")
    ner: Any = nlp.get_pipe("ner")
    listens = ner.model.get_ref("tok2vec") if ner.model.has_ref("tok2vec") else None
    if listens is not None and listens.name.startswith("tok2vec-listener"):
        # Transformer/large models share an upstream tok2vec: keep it.
        nlp = spacy.load(model, exclude=[c for c in NOT_NEEDED_FOR_NER if c != "tok2vec"])
    nlp.max_length = 2_000_000
    log.info("loaded spaCy model %s with components %s", model, nlp.pipe_names)
    return use_matmul(nlp, matmul)


@lru_cache(maxsize=4)
def english_words(model: str) -> frozenset[str]:
    """Lower-case English words from the model's lemmatizer tables (WordNet-derived): lemmas
    and their irregular forms, or an empty set when the model ships none."""
    import glob

    import spacy
    from spacy.lookups import Lookups

    root = spacy.util.get_package_path(model)
    found = glob.glob(str(root / "*" / "lemmatizer" / "lookups" / "lookups.bin"))
    if not found:
        return frozenset()
    lookups = Lookups().from_disk(found[0].rsplit("/", 1)[0])
    if not lookups.has_table("lemma_index"):
        return frozenset()
    words = {w for words in lookups.get_table("lemma_index").values() for w in words}
    # The index holds lemmas only; irregular forms ("seen", "went", "children") are the
    # exception tables' keys, which no ending taken off finds.
    if lookups.has_table("lemma_exc"):
        words.update(w for forms in lookups.get_table("lemma_exc").values() for w in forms)
    return frozenset(words)
