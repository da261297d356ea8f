"""Garbage-collector settings for a long-running consumer process."""

from __future__ import annotations

import gc

#: Young-generation collections happen when this many more container objects have been
#: allocated than freed (CPython's default is 700). A collection resets that count to zero,
#: and frees cannot take it below zero: when a batch's objects are freed after a collection,
#: most of their count-down is lost and the next collection follows sooner. A batch in flight
#: can hold over 100,000 such objects, so with 20,000 intake ran 50 collections per 100,000
#: events, a tenth of its CPU, freeing nothing (measured with `gc.callbacks`). Above a
#: batch's live set, only real growth (the remembered documents, a backlog) triggers one, and
#: cyclic garbage, which the services hardly make, is still collected within that many objects.
GC_YOUNG_THRESHOLD = 200_000


def settle_garbage_collector() -> None:
    """After start-up: move what exists now (modules, models, clients) out of the collector's
    sight for good, and collect the young generation less often."""
    gc.collect()
    gc.freeze()
    _young, middle, old = gc.get_threshold()
    gc.set_threshold(GC_YOUNG_THRESHOLD, middle, old)
