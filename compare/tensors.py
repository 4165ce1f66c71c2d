"""The compared tensors' names, gates and computation order: the cell description's vocabulary
(``references/cell.py``, defined there once), as the comparison imports it."""

from references.cell import (BACKWARD_ORDER, CACHE_CHECKS, CACHE_FROM_CACHE, FORWARD_HINTS, FORWARD_ORDER,
                             GATE_NAMES, GATE_PARAM_GRADS, PARAM_GRADS, SEED_CACHE_FIELDS, VARIANT_PARAM_GRADS, gate_of,
                             rank)

__all__ = ["BACKWARD_ORDER", "CACHE_CHECKS", "CACHE_FROM_CACHE", "FORWARD_HINTS", "FORWARD_ORDER", "GATE_NAMES",
           "GATE_PARAM_GRADS", "PARAM_GRADS", "SEED_CACHE_FIELDS", "VARIANT_PARAM_GRADS", "gate_of", "rank"]
