"""Load an implementation in the question's convention (what ``gradcheck`` reads): its ``Binding``."""

from typing import TYPE_CHECKING

from compare.conventions import bind
from compare.conventions.question import Question

if TYPE_CHECKING:
    from compare.conventions.base import Binding, Source


def load_implementation(source: "Source") -> "Binding":
    """The question-convention ``Binding`` of a path to a ``.py`` file, a module object, or a ``Binding``."""
    if isinstance(source, Question):
        return source
    return bind(source, "question")
