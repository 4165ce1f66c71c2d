"""``lstm_compare.gradcheck``: the command line's gradient check, from Python or a notebook."""

from typing import TYPE_CHECKING

from lstm_compare.choices import Convention, whole_number_fault
from lstm_compare.errors import UsageError
from lstm_compare.lstm.problem import ProblemSpec
from lstm_compare.modes import gradcheck as _gradcheck

if TYPE_CHECKING:
    from typing import Unpack

    from lstm_compare.lstm.problem import ProblemKeywords
    from lstm_compare.modes.gradcheck import GradCheck
    from lstm_compare.usercode.conventions.base import Source


def gradcheck(impl: "Source", *, max_entries: int = _gradcheck.MAX_ENTRIES, convention: Convention = "auto",
              **problem: "Unpack[ProblemKeywords]") -> "GradCheck":
    """Check ``impl``'s analytic parameter gradients against central differences of its loss, as
    ``lstm-compare gradcheck`` does: a ``GradCheck`` with ``.passed`` and ``.frame()`` (one row per checked entry).

    ``impl`` is a path, a module, or a mapping or namespace of your functions (``globals()``); the problem
    keywords are ``ProblemSpec``'s (float64 only, one cell).  A wrong value is a ``UsageError`` (one sentence).
    """
    __tracebackhide__ = True
    fault = whole_number_fault(max_entries, 1)
    if fault:
        raise UsageError(f"max_entries: {fault}.")
    try:
        return _gradcheck.gradcheck(impl, ProblemSpec.of(**problem), max_entries=max_entries, convention=convention)
    except UsageError as error:
        raise UsageError(str(error)) from None
