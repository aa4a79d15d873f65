"""Declarative tables of valid option values, and the one check that reads them.

Modelled on scikit-learn's ``_parameter_constraints``: a table maps each option
to a list of what it may be, any one of which will do —

- an :class:`Interval` (integers or real numbers between two bounds),
- an :class:`Options` (a fixed vocabulary),
- ``bool`` (true or false), ``str`` (a non-empty string), another type (its
  instances, e.g. ``os.PathLike``), ``None`` (null allowed).

The core's and the data loaders' tables are the one source of each range and
vocabulary: the functions that take the options check them with :func:`check`, and
``bpexp.config`` checks a run's configuration against the same tables, adding only
the dotted key to the message.  Pure Python (no NumPy needed, none imported).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from numbers import Integral, Real
from typing import Any


@dataclass(frozen=True)
class Interval:
    """Numbers of ``kind`` (``int`` or ``float``) between ``left`` and ``right``
    (``None``: unbounded); ``closed`` is ``"left"``, ``"right"``, ``"both"`` or
    ``"neither"``."""

    kind: type
    left: float | None = None
    right: float | None = None
    closed: str = "left"

    def is_type(self, value: Any) -> bool:
        if isinstance(value, bool):
            return False
        if self.kind is int:
            return isinstance(value, Integral)
        return isinstance(value, Real) and math.isfinite(value)

    def __contains__(self, value: Any) -> bool:
        if not self.is_type(value):
            return False
        lo_ok = self.left is None or (
            value >= self.left if self.closed in ("left", "both") else value > self.left
        )
        hi_ok = self.right is None or (
            value <= self.right if self.closed in ("right", "both") else value < self.right
        )
        return lo_ok and hi_ok

    def bounds(self) -> str:
        """``> 0``, ``>= 1``, ``in [0, 1)``..."""
        if self.right is None:
            return f"{'>=' if self.closed in ('left', 'both') else '>'} {self.left:g}"
        if self.left is None:
            return f"{'<=' if self.closed in ('right', 'both') else '<'} {self.right:g}"
        lo = "[" if self.closed in ("left", "both") else "("
        hi = "]" if self.closed in ("right", "both") else ")"
        return f"in {lo}{self.left:g}, {self.right:g}{hi}"


@dataclass(frozen=True)
class Options:
    """One of a fixed set of values (in the order they are listed to users)."""

    values: tuple

    def __contains__(self, value: Any) -> bool:
        return any(value == v and type(value) is type(v) for v in self.values)

    def __iter__(self):
        return iter(self.values)


Constraint = Interval | Options | type | None
Table = Mapping[str, Sequence[Constraint]]


def _accepts(constraint: Constraint, value: Any) -> bool:
    if constraint is None:
        return value is None
    if constraint is bool:
        return isinstance(value, bool)
    if constraint is str:
        return isinstance(value, str) and bool(value)
    if isinstance(constraint, type):
        return isinstance(value, constraint)
    return value in constraint


def problem(constraints: Sequence[Constraint], value: Any) -> str | None:
    """What ``value`` must be, ``"must be ..., got VALUE"``, or None when it is valid."""
    if any(_accepts(c, value) for c in constraints):
        return None
    null = " or null" if None in constraints else ""
    must = "a valid value"
    for c in constraints:
        if isinstance(c, Options):
            must = f"one of {', '.join(map(str, c.values))}"
        elif c is bool:
            must = "true or false"
        elif c is str:
            must = f"a non-empty string{null}"
        elif isinstance(c, Interval):
            if c.kind is int:
                must = f"an integer {c.bounds()}{null}"
            elif c.is_type(value):
                must = c.bounds()
            else:
                must = f"a number{null}"
    return f"must be {must}, got {value!r}"


def check(name: str, value: Any, constraints: Sequence[Constraint]) -> Any:
    """``value`` if it meets one of ``constraints``, else a one-line ValueError
    ``"NAME: must be ..., got VALUE"``."""
    if (message := problem(constraints, value)) is not None:
        raise ValueError(f"{name}: {message}")
    return value


def check_options(table: Table, options: Mapping[str, Any]) -> None:
    """Check each of ``options`` that ``table`` lists (see :func:`check`)."""
    for name, value in options.items():
        if name in table:
            check(name, value, table[name])


def choices(table: Table, name: str) -> tuple:
    """The vocabulary ``table`` gives option ``name`` (its :class:`Options`)."""
    return next(c.values for c in table[name] if isinstance(c, Options))
