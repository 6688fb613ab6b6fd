"""What a model family accepts for one hyperparameter or model option: a :class:`Rule`.

Each task declares its rules (``Task.space_rules``, ``Task.option_rules``);
:func:`mnist_hpo.tasks.check_config` applies them, so a new family brings its constraints
with it and nothing else names a family.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Rule:
    """The values a model family accepts for one hyperparameter or model option.

    Each task declares its own (``Task.space_rules``, ``Task.option_rules``), so a new
    family brings its constraints with it; :func:`mnist_hpo.tasks.check_config` applies them to every
    value of every list (drawn lists after drawing) and to both ends of every range.
    ``kind`` is ``"int"``, ``"float"`` (ints accepted) or ``"choice"`` (one of ``choices``).
    Bounds are inclusive unless ``low_open`` / ``high_open``.
    """

    kind: str
    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False
    choices: tuple[Any, ...] = ()
    required: bool = True  # a study of the family must search it (it has no default)

    def describe(self) -> str:
        if self.kind == "choice":
            return f"one of {', '.join(map(str, self.choices))}"
        what = "an integer" if self.kind == "int" else "a number"
        if self.low is not None and self.high is not None:
            return (
                f"{what} in {'(' if self.low_open else '['}{self.low:g}, {self.high:g}{')' if self.high_open else ']'}"
            )
        if self.low is not None:
            return f"{what} {'above' if self.low_open else 'of at least'} {self.low:g}"
        if self.high is not None:
            return f"{what} {'below' if self.high_open else 'of at most'} {self.high:g}"
        return what

    def accepts(self, value: Any) -> bool:
        if self.kind == "choice":
            return isinstance(value, str) and value in self.choices
        types = (int,) if self.kind == "int" else (int, float)
        if isinstance(value, bool) or not isinstance(value, types) or value != value:  # value != value: NaN
            return False
        if self.low is not None and (value <= self.low if self.low_open else value < self.low):
            return False
        return not (self.high is not None and (value >= self.high if self.high_open else value > self.high))
