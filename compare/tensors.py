"""The compared tensors: their names, the gate each belongs to, and the order the computation runs them in."""

GATE_NAMES = {"f": "forget", "i": "input", "g": "candidate", "o": "output"}

# Forward, within a step: pre-activations, activations, c, c_tanh, h, y (c, h, y as lstm returns them), then
# the cache's own copies of xh, c_prev, c and h, which backward reads (a cache can hold a wrong c_prev or h
# even when the returned c and h are right).
CACHE_FROM_CACHE = ("f_pre", "i_pre", "g_pre", "o_pre", "f", "i", "g", "o", "c_tanh")  # read from the cache
CACHE_CHECKS = ("cache.xh", "cache.c_prev", "cache.c", "cache.h")
FORWARD_ORDER = ("f_pre", "i_pre", "g_pre", "o_pre", "f", "i", "g", "o", "c", "c_tanh", "h", "y") + CACHE_CHECKS
# Backward, within a step, in dependency order: the head, the output gate (needs dh), the gates that need dc,
# then what flows to the previous step.
BACKWARD_ORDER = ("dWy", "dby", "dWo", "dbo", "dWf", "dbf", "dWi", "dbi", "dWg", "dbg", "dh_prev", "dc_prev")
PARAM_GRADS = ("dWf", "dWi", "dWg", "dWo", "dWy", "dbf", "dbi", "dbg", "dbo", "dby")


def gate_of(tensor):
    """'f', 'i', 'g' or 'o' for a tensor that belongs to one gate, '' otherwise."""
    if tensor in ("f_pre", "i_pre", "g_pre", "o_pre"):
        return tensor[0]
    if tensor in GATE_NAMES:
        return tensor
    if tensor[:2] in ("dW", "db") and tensor[2] in GATE_NAMES:
        return tensor[2]
    return ""


def rank(phase, tensor):
    """Position of ``tensor`` within a step of ``phase``; exceptions come first (nothing after them ran)."""
    order = FORWARD_ORDER + ("loss",) if phase == "forward" else BACKWARD_ORDER
    return -1 if tensor == "exception" else order.index(tensor)
