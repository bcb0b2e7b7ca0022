"""Whose matrix product the NER models multiply with, and on how many threads.

thinc multiplies with BLIS by default, and the BLIS build its wheel bundles knows no kernel for
some current CPUs (AMD Zen 4: ``BLIS_ARCH_DEBUG=1`` says "selecting sub-configuration
'generic'") and falls back to plain C, about three times slower than numpy's OpenBLAS on the
products the models make. ``use_matmul`` points a loaded pipeline's layers at numpy's product
(thinc's own ``NumpyOps(use_blis=False)``); ``one_blas_thread`` keeps OpenBLAS on the calling
thread while a pipeline runs: a scanning process is one core's worth of work, and OpenBLAS's
own threads would only compete with the other workers for the same cores. The findings stay
the same (ADR 0025, and the test that compares the two products on thousands of generated
texts).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from spacy.language import Language

#: Whose matrix product the NER layers use: numpy's (OpenBLAS) or thinc's default (BLIS), kept
#: as the reference the equivalence test and the benchmarks compare against.
Matmul = Literal["numpy", "blis"]


def use_matmul(nlp: Language, matmul: Matmul) -> Language:
    """Point the thinc layers of every component of ``nlp`` at ``matmul``'s product."""
    if matmul == "blis":
        return nlp  # thinc's default
    from thinc.api import NumpyOps

    ops = NumpyOps(use_blis=False)  # thinc's own switch: its base Ops multiply with numpy
    for _, component in nlp.pipeline:
        model = getattr(component, "model", None)
        if model is not None:
            for layer in model.walk():
                layer.ops = ops
    return nlp


@lru_cache(maxsize=1)
def _blas() -> Any:
    from threadpoolctl import ThreadpoolController

    return ThreadpoolController().select(user_api="blas")


@contextmanager
def one_blas_thread() -> Iterator[None]:
    """OpenBLAS on the calling thread only, for the duration (about 10 µs to enter)."""
    with _blas().limit(limits=1):
        yield
