"""The final state a whole-sequence forward returns is compared (issue 20, items 5 and 6): a wrong last c or h is
found in sequence mode, at the whole-sequence value, even where every per-step value matches."""

import inspect

import lstm_compare.handrolled.karpathy_lstm
from lstm_compare import Config, ProblemSpec, run
from helpers import write_edited, write_impl

SPEC = ProblemSpec(steps=5, hidden=4, inputs=3, batch=2)


def _sequence_findings(report):
    return {(f.reference, f.phase, f.step, f.tensor) for f in report.findings if f.mode == "sequence"}


def test_karpathys_forward_returning_the_first_cell_state_for_the_last_diverges_at_c_last(tmp_path):
    source = inspect.getsource(lstm_compare.handrolled.karpathy_lstm)
    path = write_edited(tmp_path, "karpathy_c0", source, ("return Hout, C[n - 1], Hout[n - 1], cache",
                                                          "return Hout, C[0], Hout[n - 1], cache"))
    report = run(path, Config(spec=SPEC))
    assert _sequence_findings(report) == {(r, "forward", None, "c_last") for r in ("torch", "jax")}
    assert {f.mode for f in report.findings} == {"sequence"}  # the step slices and every per-step value match


def test_the_questions_lstm_loss_returning_the_initial_state_as_the_final_one_diverges_at_h_last(tmp_path):
    path = write_impl(tmp_path, "returns_h0", ("    return y, outputs, loss, h, c, caches\n",
                                               "    return y, outputs, loss, h0, c0, caches\n"))
    report = run(path, Config(spec=ProblemSpec(steps=5, hidden=4, inputs=3)))
    assert _sequence_findings(report) == {(r, "forward", None, "h_last") for r in ("torch", "jax")}
    message = next(f.message for f in report.findings if f.mode == "sequence")
    assert ("the per-step outputs match; h_last, c_last diverge: the final h the whole-sequence forward returns "
            "(its last step's h)") in message
