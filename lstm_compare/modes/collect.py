"""Collecting measurements into one ``TensorDiff`` per (reference, mode, phase, tensor) of a model slot."""

from dataclasses import replace
from typing import TYPE_CHECKING, Iterable, Sequence

import numpy as np

from lstm_compare.errors import ImplementationRaised
from lstm_compare.locating.locate import Finding, failure_finding
from lstm_compare.lstm.where import Direction, Mode, Phase, Where, by_reference_and_mode
from lstm_compare.measuring.measure import AnyExpectation, Expectation, TensorDiff, measure, tensor_diff

if TYPE_CHECKING:
    pass


class Collector:
    """Accumulates measurements into one ``TensorDiff`` per (reference, mode, phase, tensor) of one model slot."""

    def __init__(self, layer: int = 1, direction: Direction = "forward") -> None:
        self.layer, self.direction = layer, direction  # the model's slot every measurement here belongs to
        self.diffs: list[TensorDiff] = []
        self.failures: list[Finding] = []
        self._backward: dict[Where, tuple[list[int], list[dict[str, np.ndarray]], tuple[int, ...]]] = {}
        # the order of references and of tensor names in which ``finish`` lists the backward diffs, whatever
        # order the batches of different sizes were measured in
        self.backward_order: tuple[list[str], list[str]] = ([], [])

    def extend(self, diffs: Iterable[TensorDiff]) -> None:
        """Measurements made elsewhere (a forward run's stream), in this slot."""
        self.diffs += diffs

    def order_backward(self, references: Sequence[str], names: Sequence[str]) -> None:
        """The order of references and tensor names in which ``finish`` lists the backward diffs."""
        self.backward_order = (list(references), list(names))

    def where(self, reference: str, mode: Mode, phase: Phase, tensor: str) -> Where:
        return Where(reference, mode, phase, tensor, self.layer, self.direction)

    def add(self, reference: str, mode: Mode, phase: Phase, tensor: str, steps: Sequence[int] | np.ndarray,
            actual: np.ndarray, expected: Expectation) -> None:
        where = self.where(reference, mode, phase, tensor)
        self.diffs.append(tensor_diff(where, np.shape(actual)[1:], steps, [measure(actual, expected)]))

    def fail(self, reference: str, mode: Mode, raised: ImplementationRaised) -> None:
        """An exception in the user's code, located in this slot."""
        finding = failure_finding(reference, mode, raised)
        self.failures.append(replace(finding, where=replace(finding.where, layer=self.layer,
                                                            direction=self.direction)))

    def backward_steps(self, reference: str, mode: Mode, steps: list[int], results: list[dict[str, np.ndarray]],
                       expected: dict[str, AnyExpectation]) -> None:
        for name in expected:
            actual = results[0][name][None] if len(results) == 1 else np.stack([r[name] for r in results])  # (S, ...)
            where = self.where(reference, mode, "backward", name)
            done_steps, stats, _ = self._backward.setdefault(where, ([], [], actual.shape[1:]))
            done_steps.extend(steps)
            stats.append(measure(actual, expected[name]))

    def finish(self) -> tuple[TensorDiff, ...]:
        """All ``TensorDiff``s, the per-step backward measurements merged into one per tensor."""
        references, names = self.backward_order
        by_mode = by_reference_and_mode(references)

        def order(where: Where) -> tuple[int, int, int]:
            return (*by_mode(where), names.index(where.tensor) if where.tensor in names else len(names))

        for where in sorted(self._backward, key=order):
            steps, stats, shape = self._backward[where]
            self.diffs.append(tensor_diff(where, shape, steps, stats))
        self._backward.clear()
        return tuple(self.diffs)
