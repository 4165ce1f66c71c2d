"""lstm_compare/handrolled/variant_lstm.py against the official torch.nn.LSTM (stacked, bidirectional, projected), and its
peepholes, which torch lacks, against central finite differences and its own cell functions; and
lstm_compare/handrolled/variant_layers_lstm.py (per-layer dicts) against the flat file."""

import inspect
import types

import numpy as np
import pytest
import torch

import lstm_compare.handrolled.variant_layers_lstm as layered
import lstm_compare.handrolled.variant_lstm as variant
from lstm_compare.lstm.problem import ProblemSpec, make_model_problem
from conftest import normwise_error
from lstm_compare.lstm.model import Model, ModelProblem, slot_params

TOLERANCE = 1e-12  # float64, against the official nn.LSTM
TORCH_GATES = "ifgo"  # torch's row blocks of weight_ih, weight_hh, bias_ih
SOURCE = inspect.getsource(variant)


def torch_layout(model, params, inputs):
    """The flat internal dict as nn.LSTM's state_dict (bias_hh zero) plus the Linear head's, as NumPy arrays."""
    out = {}
    for slot in model.slots():
        p = slot_params(model, params, slot)
        n = model.input_size(slot.layer, inputs, p["Wf"].shape[1])
        key = f"_l{slot.layer - 1}" + ("_reverse" if slot.reverse else "")
        out["weight_ih" + key] = np.concatenate([p[f"W{g}"][:n].T for g in TORCH_GATES])  # (4H, In)
        out["weight_hh" + key] = np.concatenate([p[f"W{g}"][n:].T for g in TORCH_GATES])  # (4H, S)
        out["bias_ih" + key] = np.concatenate([p[f"b{g}"] for g in TORCH_GATES])  # (4H,)
        out["bias_hh" + key] = np.zeros_like(out["bias_ih" + key])
        if model.proj:
            out["weight_hr" + key] = p["Wr"].T  # (P, H)
    out["head.weight"], out["head.bias"] = params["Wy"].T, params["by"]
    return out


def torch_run(problem):
    """The official nn.LSTM + Linear in float64: outputs, loss, gradients (torch layout), dinputs, dh0, dc0."""
    model, H = problem.model, problem.hidden
    X = problem.inputs.shape[-1]
    lstm = torch.nn.LSTM(X, H, num_layers=model.layers, bidirectional=model.bidirectional, proj_size=model.proj,
                         dtype=torch.float64)
    head = torch.nn.Linear(model.output_size(H), problem.targets.shape[-1], dtype=torch.float64)
    weights = torch_layout(model, problem.params, X)
    lstm.load_state_dict({k: torch.tensor(v) for k, v in weights.items() if not k.startswith("head.")})
    head.load_state_dict({"weight": torch.tensor(weights["head.weight"]), "bias": torch.tensor(weights["head.bias"])})
    x, h0, c0 = (torch.tensor(a, requires_grad=True) for a in (problem.inputs, problem.h0, problem.c0))
    out, _ = lstm(x, (h0, c0))
    y = head(out)
    loss = ((y - torch.tensor(problem.targets)) ** 2).mean(-1).sum()
    loss.backward()
    grads = {name: value.grad.numpy() for name, value in lstm.named_parameters() if not name.startswith("bias_hh")}
    grads["head.weight"], grads["head.bias"] = head.weight.grad.numpy(), head.bias.grad.numpy()
    return y.detach().numpy(), loss.item(), grads, x.grad.numpy(), h0.grad.numpy(), c0.grad.numpy(), weights


def torch_states(problem, weights):
    """Each slot's (h_t, c_t) in time order, stepping a one-layer, one-direction nn.LSTM a step at a time on the
    previous layer's torch outputs: hs (L, T, [B,] D S), cs (L, T, [B,] D H)."""
    model, H = problem.model, problem.hidden
    seq = torch.tensor(problem.inputs)
    hs, cs = [], []
    for layer in range(1, model.layers + 1):
        h_dirs, c_dirs = [], []
        for slot in (s for s in model.slots() if s.layer == layer):
            key = f"_l{layer - 1}" + ("_reverse" if slot.reverse else "")
            cell = torch.nn.LSTM(seq.shape[-1], H, proj_size=model.proj, dtype=torch.float64)
            cell.load_state_dict({name[:-len(key)] + "_l0": torch.tensor(value) for name, value in weights.items()
                                  if name.endswith(key) and not name.startswith("head.")})
            row = model.slots().index(slot)
            state = (torch.tensor(problem.h0[row:row + 1]), torch.tensor(problem.c0[row:row + 1]))
            h_seq, c_seq = [None] * len(seq), [None] * len(seq)
            with torch.no_grad():
                for t in (reversed(range(len(seq))) if slot.reverse else range(len(seq))):
                    _, state = cell(seq[t:t + 1], state)
                    h_seq[t], c_seq[t] = state[0][0], state[1][0]
            h_dirs.append(torch.stack(h_seq))
            c_dirs.append(torch.stack(c_seq))
        seq = torch.cat(h_dirs, dim=-1)
        hs.append(seq.numpy())
        cs.append(torch.cat(c_dirs, dim=-1).numpy())
    assert per_step(hs[-1], torch_run_output(problem, weights)) <= TOLERANCE, "the stepping is not nn.LSTM's"
    return np.stack(hs), np.stack(cs)


def per_step(actual, expected):
    """The worst norm-wise error over the leading (step) axis."""
    assert actual.shape == expected.shape, f"shape {actual.shape} != {expected.shape}"
    return max(normwise_error(a, e) for a, e in zip(actual, expected))


def errors_vs_torch(module, problem):
    """Every compared quantity's worst norm-wise error, ``module``'s model functions against the official."""
    y, loss, grads, dx, dh0, dc0, weights = torch_run(problem)
    hs_ref, cs_ref = torch_states(problem, weights)
    outputs, my_loss, hs, cs, caches = module.lstm_model_loss(problem.params, problem.h0, problem.c0,
                                                              problem.inputs, problem.targets)
    dparams, dinputs, my_dh0, my_dc0 = module.dlstm_model_loss(problem.params, problem.inputs, problem.targets,
                                                               outputs, caches)
    assert list(dparams) == list(problem.model.param_names())
    mine = torch_layout(problem.model, dparams, problem.inputs.shape[-1])
    errors = {"outputs": per_step(outputs, y), "loss": normwise_error(my_loss, loss),
              "dinputs": per_step(dinputs, dx), "dh0": per_step(my_dh0, dh0), "dc0": per_step(my_dc0, dc0),
              "hs": max(per_step(a, e) for a, e in zip(hs, hs_ref)),
              "cs": max(per_step(a, e) for a, e in zip(cs, cs_ref))}
    assert hs.shape == hs_ref.shape and cs.shape == cs_ref.shape
    errors.update({f"d{name}": normwise_error(mine[name], value) for name, value in grads.items()})
    return errors


def torch_run_output(problem, weights):
    """The stacked nn.LSTM's own output sequence, to check the per-slot stepping above against it."""
    model, H = problem.model, problem.hidden
    lstm = torch.nn.LSTM(problem.inputs.shape[-1], H, num_layers=model.layers, bidirectional=model.bidirectional,
                         proj_size=model.proj, dtype=torch.float64)
    lstm.load_state_dict({k: torch.tensor(v) for k, v in weights.items() if not k.startswith("head.")})
    with torch.no_grad():
        out, _ = lstm(torch.tensor(problem.inputs), (torch.tensor(problem.h0), torch.tensor(problem.c0)))
    return out.numpy()


GRID = [pytest.param(Model(layers, bidirectional, proj), batch,
                     id=f"L{layers}-{'bi' if bidirectional else 'uni'}-P{proj}-{'B3' if batch else 'unbatched'}")
        for layers in (1, 2, 3) for bidirectional in (False, True) for proj in (0, 2) for batch in (None, 3)]


# Measured worst norm-wise error over the 24 cells: 5.3e-15 (L3-uni-P2-B3, dh0); every cell under 1e-14.
@pytest.mark.parametrize("model, batch", GRID)
def test_model_functions_match_official_torch_lstm_in_float64(model, batch):
    problem = make_model_problem(ProblemSpec(steps=5, hidden=4, inputs=3, outputs=2, batch=batch, seed=7,
                                             model=model))
    errors = errors_vs_torch(variant, problem)
    worst = max(errors, key=errors.__getitem__)
    assert errors[worst] <= TOLERANCE, f"{worst}: {errors[worst]:.2e} ({len(errors)} quantities compared)"


PEEPHOLE_SPEC = ProblemSpec(steps=5, hidden=4, inputs=3, outputs=2, batch=2, seed=3,
                            model=Model(layers=2, bidirectional=True, proj=2, peepholes=True))


def model_loss(module, problem, params):
    return module.lstm_model_loss(params, problem.h0, problem.c0, problem.inputs, problem.targets)[1]


def peephole_fd_error(module, problem, entries=4, eps=1e-5):
    """Worst norm-wise error of ``entries`` entries of every pf, pi, po gradient against central differences.

    Norm-wise per tensor, as everywhere in the tests: an entry near zero (one is 1.5e-6 here) carries the
    differences' rounding error, about 1e-16 |loss| / eps, which a per-entry relative error would magnify.
    """
    outputs, _, _, _, caches = module.lstm_model_loss(problem.params, problem.h0, problem.c0, problem.inputs,
                                                      problem.targets)
    dparams = module.dlstm_model_loss(problem.params, problem.inputs, problem.targets, outputs, caches)[0]
    worst = 0.0
    for name in (n for n in problem.params if n[:2] in ("pf", "pi", "po")):
        fd = np.zeros(entries)
        for j in range(entries):
            up, down = dict(problem.params), dict(problem.params)
            up[name], down[name] = up[name].copy(), down[name].copy()
            up[name][j] += eps
            down[name][j] -= eps
            fd[j] = (model_loss(module, problem, up) - model_loss(module, problem, down)) / (2 * eps)
        worst = max(worst, normwise_error(dparams[name][:entries], fd))
    return worst


def test_peephole_gradients_match_central_differences():
    # Measured: 3.0e-8 worst norm-wise error over 4 entries of each of the 12 peephole vectors (eps = 1e-5).
    assert peephole_fd_error(variant, make_model_problem(PEEPHOLE_SPEC)) <= 1e-6


def test_peephole_model_with_zero_peepholes_is_the_torch_model():
    problem = make_model_problem(PEEPHOLE_SPEC)
    plain = Model(layers=2, bidirectional=True, proj=2)
    params = {name: problem.params[name] for name in plain.param_names()}
    zeroed = {name: (np.zeros_like(v) if name[:2] in ("pf", "pi", "po") else v) for name, v in problem.params.items()}
    without = ModelProblem(plain, params, problem.inputs, problem.targets, problem.h0, problem.c0)
    assert max(errors_vs_torch(variant, without).values()) <= TOLERANCE
    run = [variant.lstm_model_loss(p, problem.h0, problem.c0, problem.inputs, problem.targets)[0]
           for p in (params, zeroed)]
    assert np.array_equal(run[0], run[1])


def stepped_by_hand(module, problem):
    """A one-layer, one-direction model run with the cell functions lstm/dlstm: outputs, loss, hs, cs, dparams."""
    params = {**slot_params(problem.model, problem.params, problem.model.slots()[0]),
              "Wy": problem.params["Wy"], "by": problem.params["by"]}
    h, c = problem.h0[0], problem.c0[0]
    ys, hs, cs, caches = [], [], [], []
    for x in problem.inputs:
        y, h, c, cache = module.lstm(params, x, h, c)
        for store, value in ((ys, y), (hs, h), (cs, c), (caches, cache)):
            store.append(value)
    outputs = np.stack(ys)
    loss = float(np.sum(np.mean((outputs - problem.targets) ** 2, axis=-1)))
    total = {name: np.zeros_like(value) for name, value in params.items()}
    dh, dc = np.zeros_like(h), np.zeros_like(c)
    for y, target, cache in reversed(list(zip(ys, problem.targets, caches))):
        step, dh, dc = module.dlstm(params, 2 * (y - target) / y.shape[-1], dh, dc, cache)
        assert list(step) == list(params)
        for name, value in step.items():
            total[name] += value
    return outputs, loss, np.stack(hs), np.stack(cs), total, dh, dc


@pytest.mark.parametrize("model", [Model(peepholes=True), Model(proj=2, peepholes=True), Model(proj=2)],
                         ids=["peepholes", "peepholes-P2", "P2"])
@pytest.mark.parametrize("batch", [None, 3], ids=["unbatched", "B3"])
def test_cell_functions_stepped_by_hand_give_the_model_functions_results(model, batch):
    problem = make_model_problem(ProblemSpec(steps=6, hidden=4, inputs=3, outputs=2, batch=batch, seed=5,
                                             model=model))
    outputs, loss, hs, cs, dparams, dh0, dc0 = stepped_by_hand(variant, problem)
    m_outputs, m_loss, m_hs, m_cs, caches = variant.lstm_model_loss(problem.params, problem.h0, problem.c0,
                                                                    problem.inputs, problem.targets)
    m_dparams, _, m_dh0, m_dc0 = variant.dlstm_model_loss(problem.params, problem.inputs, problem.targets,
                                                          m_outputs, caches)
    # The same cell arithmetic; only the head's sums over steps run in another order.
    assert per_step(outputs, m_outputs) <= 1e-14 and normwise_error(loss, m_loss) <= 1e-14
    assert per_step(hs, m_hs[0]) == 0 and per_step(cs, m_cs[0]) == 0
    assert normwise_error(dh0, m_dh0[0]) <= 1e-14 and normwise_error(dc0, m_dc0[0]) <= 1e-14
    for name, value in dparams.items():
        key = name if name in ("Wy", "by") else name + "_l1"
        assert normwise_error(value, m_dparams[key]) <= 1e-14, name
    assert set(m_dparams) == {n if n in ("Wy", "by") else n + "_l1" for n in dparams}


def test_cache_is_a_dict_of_cache_fields_with_m_only_when_projected():
    for model, has_m in ((Model(peepholes=True), False), (Model(proj=2), True)):
        problem = make_model_problem(ProblemSpec(steps=2, hidden=4, model=model))
        params = {**slot_params(model, problem.params, model.slots()[0]), "Wy": problem.params["Wy"],
                  "by": problem.params["by"]}
        cache = variant.lstm(params, problem.inputs[0], problem.h0[0], problem.c0[0])[3]
        assert set(cache) == set(variant.CACHE_FIELDS) - ({"m"} if not has_m else set())


@pytest.mark.parametrize("batch", [None, 2], ids=["unbatched", "B2"])
def test_float32_in_gives_float32_out(batch):
    problem = make_model_problem(ProblemSpec(steps=3, hidden=4, batch=batch, model=Model(2, True, 2, True)))
    problem = problem.astype(np.float32)
    outputs, _, hs, cs, caches = variant.lstm_model_loss(problem.params, problem.h0, problem.c0, problem.inputs,
                                                         problem.targets)
    dparams, dinputs, dh0, dc0 = variant.dlstm_model_loss(problem.params, problem.inputs, problem.targets,
                                                          outputs, caches)
    arrays = {"outputs": outputs, "hs": hs, "cs": cs, "dinputs": dinputs, "dh0": dh0, "dc0": dc0,
              **{f"d{n}": v for n, v in dparams.items()}}
    assert {n: a.dtype.name for n, a in arrays.items() if a.dtype != np.float32} == {}


# Each mutation is one wrong gate equation, transpose or sign: the comparisons above must catch every one.
MUTATIONS = {
    "forget_gate_tanh": ("sigmoid(f_pre)", "np.tanh(f_pre)"),
    "input_bias_sign": ('i_pre = xh @ p["Wi"] + p["bi"]', 'i_pre = xh @ p["Wi"] - p["bi"]'),
    "candidate_sigmoid": ("np.tanh(g_pre)", "sigmoid(g_pre)"),
    "output_weight_of_forget": ('o_pre = xh @ p["Wo"]', 'o_pre = xh @ p["Wf"]'),
    "peephole_f_sign": ('f_pre + p["pf"] * c_prev', 'f_pre - p["pf"] * c_prev'),
    "peephole_i_on_c": ('i_pre + p["pi"] * c_prev', 'i_pre + p["pi"] * c_prev * 0'),
    "peephole_o_on_c_prev": ('o_pre + p["po"] * c', 'o_pre + p["po"] * c_prev'),
    "dforget_sign": ("df_pre = dc * c_prev * f * (1 - f)", "df_pre = -dc * c_prev * f * (1 - f)"),
    "dinput_missing_derivative": ("di_pre = dc * g * i * (1 - i)", "di_pre = dc * g"),
    "dcandidate_unsquared": ("dg_pre = dc * i * (1 - g**2)", "dg_pre = dc * i * (1 - g)"),
    "doutput_uses_c": ("do_pre = dm * c_tanh * o", "do_pre = dm * c * o"),
    "dWr_transposed": ('_sum_outer(cache["m"], dh)', '_sum_outer(dh, cache["m"]).reshape(p["Wr"].shape)'),
    "dm_skips_projection": ('dm = dh @ p["Wr"].T', 'dm = dh @ p["Wr"].T * 0 + dh.sum(-1, keepdims=True)'),
    "dpf_on_c": ('_sum_batch(df_pre * c_prev)', '_sum_batch(df_pre * c)'),
    "dpo_on_c_prev": ('_sum_batch(do_pre * c)', '_sum_batch(do_pre * c_prev)'),
    "dc_prev_peephole_sign": ('p["pf"] * df_pre + p["pi"]', 'p["pf"] * df_pre - p["pi"]'),
    "dxh_transposed_weight_order": ('d_pre[gate] @ p[f"W{gate}"].T', 'd_pre[gate] @ p["Wf"].T'),
}


def mutated(name):
    old, new = MUTATIONS[name]
    assert SOURCE.count(old) == 1, old
    module = types.ModuleType(f"variant_mutation_{name}")
    exec(compile(SOURCE.replace(old, new), f"<{name}>", "exec"), module.__dict__)
    return module


@pytest.mark.parametrize("name", MUTATIONS)
def test_every_wrong_gate_equation_transpose_or_sign_is_caught(name):
    module = mutated(name)
    caught = []
    problem = make_model_problem(ProblemSpec(steps=4, hidden=4, inputs=3, outputs=2, batch=2, seed=7,
                                             model=Model(2, True, 2)))
    caught.append(max(errors_vs_torch(module, problem).values()) > TOLERANCE)
    caught.append(peephole_fd_error(module, make_model_problem(PEEPHOLE_SPEC)) > 1e-6)
    assert any(caught)


def as_layers(model, flat):
    """The flat dict {Wf_l1, Wf_l1_reverse, ..., Wy, by} as variant_layers_lstm's {"layers": [...], Wy, by}."""
    layers = [{} for _ in range(model.layers)]
    for slot in model.slots():
        for name in model.cell_params():
            layers[slot.layer - 1][name + ("_reverse" if slot.reverse else "")] = flat[name + slot.suffix]
    return {"layers": layers, "Wy": flat["Wy"], "by": flat["by"]}


@pytest.mark.parametrize("model", [Model(1), Model(2, True, 2), Model(3, True, 0, True), Model(2, False, 3, True)],
                         ids=["L1", "L2-bi-P2", "L3-bi-peepholes", "L2-P3-peepholes"])
@pytest.mark.parametrize("batch", [None, 2], ids=["unbatched", "B2"])
def test_layers_shaped_parameters_give_the_flat_models_results(model, batch):
    problem = make_model_problem(ProblemSpec(steps=5, hidden=4, inputs=3, outputs=2, batch=batch, seed=9,
                                             model=model))
    assert layered.MODEL_PARAMS == "layers"
    params = as_layers(model, problem.params)
    flat = variant.lstm_model_loss(problem.params, problem.h0, problem.c0, problem.inputs, problem.targets)
    mine = layered.lstm_model_loss(params, problem.h0, problem.c0, problem.inputs, problem.targets)
    for a, b in zip(mine[:4], flat[:4]):
        assert np.array_equal(a, b)
    dflat, *rest_flat = variant.dlstm_model_loss(problem.params, problem.inputs, problem.targets, flat[0], flat[4])
    dmine, *rest = layered.dlstm_model_loss(params, problem.inputs, problem.targets, mine[0], mine[4])
    expected = as_layers(model, dflat)
    assert [list(layer) for layer in dmine["layers"]] == [list(layer) for layer in params["layers"]]
    for k, layer in enumerate(expected["layers"]):
        for name, value in layer.items():
            assert normwise_error(dmine["layers"][k][name], value) <= 1e-15, (k, name)
    for a, b in [(dmine["Wy"], dflat["Wy"]), (dmine["by"], dflat["by"]), *zip(rest, rest_flat)]:
        assert normwise_error(a, b) <= 1e-15
