"""Load an implementation in the question's convention (what ``gradcheck`` reads): its ``Binding``."""

from os import PathLike
from types import ModuleType
from typing import TYPE_CHECKING

from compare.conventions import bind
from compare.conventions.question import Question

if TYPE_CHECKING:
    from compare.conventions.base import Binding


def load_implementation(source: "str | PathLike[str] | ModuleType | Binding") -> "Binding":
    """The question-convention ``Binding`` of a path to a ``.py`` file, a module object, or a ``Binding``."""
    if isinstance(source, Question):
        return source
    return bind(source, "question")
