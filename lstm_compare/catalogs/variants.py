"""The catalog of bugs that exist only in model variants: one-line (or one-block) mutations of
``lstm_compare/handrolled/variant_lstm.py``, each with where the harness must find it first.

The rules of ``lstm_compare/catalogs/catalog.py`` hold, per slot (layer, direction): a wrong line in the cell's forward
(``lstm``) shows in isolated forward at step 0, a wrong line in its backward (``dlstm``) in isolated backward at
the last step; a wrong line in the whole-model functions (``lstm_model_loss``/``dlstm_model_loss``) only in
sequence mode, where the slots run in data-flow order (layer 1 forward, layer 1 backward, layer 2 ... forward;
the reverse order backward) and a slot's steps in its own processing order (step 0 of the reverse direction is
time T-1).  In sequence mode each slot's h and c are compared per step (c before h), its parameters' gradients
per whole sequence, dinputs (dx) per step like a single cell's, dh0 and dc0 per slot.
"""

from lstm_compare.catalogs.catalog import Bug, Location
from lstm_compare.lstm.problem import ProblemSpec
from lstm_compare.lstm.model import Model

BASE = "lstm_compare.handrolled.variant_lstm"
TWO_LAYERS = ProblemSpec(model=Model(layers=2))
BIDIRECTIONAL = ProblemSpec(model=Model(bidirectional=True))
PEEPHOLES = ProblemSpec(model=Model(peepholes=True))
PROJECTED = ProblemSpec(model=Model(proj=3))  # P = 3 < H = 5: a transposed (H, P) matrix changes shape
# Cell bugs in a stacked bidirectional model: the backward pass starts at the top, with layer 2's reverse direction.
STACKED_PEEPHOLES = ProblemSpec(model=Model(layers=2, bidirectional=True, peepholes=True))
STACKED_PROJECTED = ProblemSpec(model=Model(layers=2, bidirectional=True, proj=3))

VARIANTS = (
    # --- the whole-model forward ``lstm_model_loss``: sequence mode ---
    Bug("layer2_reads_cell_state",
        "layer 2 reads layer 1's cell states c instead of its outputs h (both have H entries without a "
        "projection, so nothing complains); layer 1 is right, and layer 2's first c is the first thing wrong",
        "seq = out  # the next layer reads this layer's h", "seq = cell  # the next layer reads this layer's h",
        Location.at("sequence", "forward", 0, "c", layer=2), TWO_LAYERS, BASE),
    Bug("reverse_outputs_not_flipped",
        "the reverse direction's h sequence is left in its processing order (T-1 ... 0) instead of being "
        "flipped back into time order (its c and caches are flipped); its c matches, its h does not, from its "
        "first step on",
        "h_seq, c_seq, slot_caches = h_seq[::-1], c_seq[::-1], slot_caches[::-1]",
        "c_seq, slot_caches = c_seq[::-1], slot_caches[::-1]",
        Location.at("sequence", "forward", 0, "h", direction="reverse"), BIDIRECTIONAL, BASE),
    Bug("reverse_reads_forward_initial_state",
        "h0 and c0 are indexed by layer alone, so the reverse direction starts from the forward direction's "
        "row (torch stacks them layer 1 forward, layer 1 reverse, ...); its first c is wrong",
        "row = (layer - 1) * D + d  # the slot's row in h0, c0", "row = layer - 1  # the slot's row in h0, c0",
        Location.at("sequence", "forward", 0, "c", direction="reverse"), BIDIRECTIONAL, BASE),
    # --- the whole-model backward ``dlstm_model_loss``: sequence mode ---
    Bug("layer1_dh_missing_layer2",
        "the gradient layer 2 sends down (its dL/d input) is added to its own slot of douts, an off-by-one "
        "(k for k - 1), after layer 2 has used it: layer 1's dh misses layer 2's contribution entirely.  Layer 2 "
        "is right; layer 1's whole-sequence gradients are the first thing wrong (dWo first, as the output gate "
        "is differentiated first; the model's dx comes after every layer)",
        "douts[k - 1] += din", "douts[k] += din",
        Location.at("sequence", "backward", None, "dWo"), TWO_LAYERS, BASE),
    # --- the cell backward ``dlstm``: isolated backward, last step ---
    Bug("forget_derivative_missing_peephole",
        "the forget gate's derivative is taken from dc before the output gate's peephole term po * do_pre "
        "(o_pre reads the new c) is added to it; i and g get the full dc",
        '    dc = dc_next + dm * o * (1 - c_tanh**2)\n'
        '    if "po" in p:\n'
        '        dc = dc + p["po"] * do_pre  # o_pre reads the new c\n'
        '    df_pre = dc * c_prev * f * (1 - f)\n',
        '    dc = dc_next + dm * o * (1 - c_tanh**2)\n'
        '    df_pre = dc * c_prev * f * (1 - f)\n'
        '    if "po" in p:\n'
        '        dc = dc + p["po"] * do_pre  # o_pre reads the new c\n',
        Location.at("isolated", "backward", -1, "dWf", layer=2, direction="reverse"), STACKED_PEEPHOLES, BASE),
    Bug("dc_prev_missing_input_peephole",
        "dc_prev leaves out the input gate's peephole path pi * di_pre (i_pre reads c_prev); the forget gate's "
        "pf * df_pre is there",
        'dc_prev = dc_prev + p["pf"] * df_pre + p["pi"] * di_pre', 'dc_prev = dc_prev + p["pf"] * df_pre',
        Location.at("isolated", "backward", -1, "dc_prev"), PEEPHOLES, BASE),
    Bug("projection_grad_transposed",
        "dWr is computed in torch's (P, H) layout, dh^T m, and reshaped to Wr's (H, P) so that the shapes fit: "
        "the entries are scrambled, not transposed",
        'dparams["Wr"] = _sum_outer(cache["m"], dh)',
        'dparams["Wr"] = _sum_outer(dh, cache["m"]).reshape(p["Wr"].shape)',
        Location.at("isolated", "backward", -1, "dWr", layer=2, direction="reverse"), STACKED_PROJECTED, BASE),
    # --- the cell forward ``lstm``: isolated forward, step 0 ---
    Bug("output_peephole_reads_c_prev",
        "the output gate's peephole reads c_prev, like f and i, instead of the new c",
        'o_pre = o_pre + p["po"] * c', 'o_pre = o_pre + p["po"] * c_prev',
        Location.at("isolated", "forward", 0, "o_pre"), PEEPHOLES, BASE),
)
