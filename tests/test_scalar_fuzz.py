"""Random programs on Python floats: the Python-float body against NumPy's code.

tests/test_scalar_math.py checks each op of the Python-float body (graphc/codegen_scalar.py)
on its own.  Here programs chain up to eight of them, so what one op hands the next is
checked too: a quiet range left in the middle of a body (the whole NumPy body reruns and
must warn once, not twice), `math` and NumPy forms feeding each other, values that
overflow, underflow or turn nan on the way, and gradients through all of it.

The oracle is the same compiled function with the Python-float body turned off (NumPy's
0-d code, ``numpy_only``): the same values bit for bit (signed zeros and nans included),
the same result types, the same warnings and the same errors.  Inputs are exact special
values (zeros of both signs, infinities, nans, huge and tiny numbers, exp's overflow edge)
and random ones of every size.

The quick profile (derandomized) runs in ``make test``; ``make fuzz`` runs
``GRAPHC_FUZZ_EXAMPLES`` programs (default 2000) in each property.
"""
from __future__ import annotations

import random
import re

import numpy as np
import pytest
from hypothesis import given

import graphc

from _fuzz import SEEDS, long, quick
from test_scalar_math import BINARY, UNARY, inputs, numpy_only, run, same

# The ops with a Python-float form that test_scalar_math's tables leave out.
UNARY = {**UNARY, "sign": np.sign}
BINARY = {**BINARY, "not": lambda x, y: np.where(np.logical_not(x > y), x, y)}
OPS = sorted(UNARY) + sorted(BINARY)
# Constants a user writes next to the variables (exp's overflow edge among them).
CONSTANTS = (0.0, -0.0, 1.0, -1.0, 0.5, 2.0, 709.0, 1e-300)


class Program:
    """Steps ``(op, i, j)`` over a list of values that starts with the arguments and the
    constants; step k appends ``op(values[i], values[j])`` (``j`` unused by unary ops).
    The result is the last value, or the last two when ``pair``."""

    def __init__(self, n_args, steps, pair):
        self.n_args, self.steps, self.pair = n_args, steps, pair

    def __call__(self, *args):
        values = list(args) + list(CONSTANTS)
        for op, i, j in self.steps:
            values.append(UNARY[op](values[i]) if op in UNARY else BINARY[op](values[i], values[j]))
        return (values[-2], values[-1]) if self.pair else values[-1]

    def __repr__(self):
        names = [f"x{k}" for k in range(self.n_args)] + [repr(c) for c in CONSTANTS]
        lines = []
        for k, (op, i, j) in enumerate(self.steps):
            args = names[i] if op in UNARY else f"{names[i]}, {names[j]}"
            names.append(f"v{k}")
            lines.append(f"v{k} = {op}({args})")
        out = ", ".join(names[-2:]) if self.pair else names[-1]
        return "; ".join(lines) + f"; return {out}"


def _error(err):
    """An exception as compared: type and message, less the caller's file and line that
    graphc's trace-time errors name (the two bodies are called from different lines here)."""
    if err is None:
        return None
    kind, text, unchained = err
    text = re.sub(r"^\S+:\d+: ", "", text).split("\n")[0]
    return kind, text, unchained


def assert_like_numpy(fast, slow, args):
    got, want = run(fast, *args), run(slow, *args)
    assert same(got[0], want[0]), (got[0], want[0])
    assert got[1] == want[1], (got[1], want[1])                    # the same warnings
    assert _error(got[2]) == _error(want[2]), (got[2], want[2])    # the same error


def draw_program(seed):
    rng = random.Random(seed)
    n_args = rng.choice((1, 2, 2, 3))
    steps = []
    for k in range(rng.randint(1, 8)):
        live = n_args + len(CONSTANTS) + k

        def pick():
            # mostly the arguments and earlier steps: constants alone fold away
            if rng.random() < 0.2:
                return rng.randrange(live)
            return rng.choice(list(range(n_args)) + list(range(n_args + len(CONSTANTS), live)))
        steps.append((rng.choice(OPS), pick(), pick()))
    return Program(n_args, steps, pair=rng.random() < 0.2 and len(steps) > 1), rng


def check_values(seed):
    program, rng = draw_program(seed)
    fast = graphc.compile(program)
    slow = numpy_only(lambda: graphc.compile(program))
    for args in inputs(program.n_args, 12, rng.random()):
        try:
            assert_like_numpy(fast, slow, args)
        except AssertionError as e:
            raise AssertionError(f"{program!r} at {args}: {e}") from None


def check_gradients(seed):
    program, rng = draw_program(seed)
    program.pair = False                       # a scalar loss
    argnums = tuple(range(program.n_args))
    fast = graphc.value_and_grad(program, argnums=argnums)
    slow = numpy_only(lambda: graphc.value_and_grad(program, argnums=argnums))
    for args in inputs(program.n_args, 8, rng.random()):
        try:
            assert_like_numpy(fast, slow, args)
        except AssertionError as e:
            raise AssertionError(f"{program!r} at {args}: {e}") from None


def test_program_repr_reads_as_code():
    p = Program(2, [("exp", 0, 0), ("hypot", 1, 10)], pair=False)
    assert repr(p) == "v0 = exp(x0); v1 = hypot(x1, v0); return v1"
    assert p(0.0, 3.0) == 3.1622776601683795


@quick(40)
@given(SEEDS)
def test_scalar_programs_like_numpy(seed):
    check_values(seed)


@quick(25)
@given(SEEDS)
def test_scalar_program_gradients_like_numpy(seed):
    check_gradients(seed)


@pytest.mark.fuzz
@long()
@given(SEEDS)
def test_scalar_fuzz_long_programs(seed):
    check_values(seed)


@pytest.mark.fuzz
@long()
@given(SEEDS)
def test_scalar_fuzz_long_gradients(seed):
    check_gradients(seed)


def test_trace_time_errors_compare_without_the_caller():
    """Python's ``(-1.0) ** 1e-300`` of two constants is complex at trace time: both bodies
    refuse it with the same error (seed 18742 of the long run)."""
    program = Program(2, [("pow", 5, 9)], pair=False)
    assert "pow(-1.0, 1e-300)" in repr(program)
    argnums = (0, 1)
    fast = graphc.value_and_grad(program, argnums=argnums)
    slow = numpy_only(lambda: graphc.value_and_grad(program, argnums=argnums))
    assert_like_numpy(fast, slow, (3.0, -1.0))
    assert run(fast, 3.0, -1.0)[2][0] is graphc.UnsupportedError


def test_programs_reach_every_op_with_a_float_form():
    """The programs draw every op that has a Python-float form (a new form gets fuzzed)."""
    from graphc.primitive import REGISTRY
    seen = set()
    for seed in range(300):
        program, _ = draw_program(seed)
        try:
            with np.errstate(all="ignore"):     # constants folded in Python at trace time
                g = graphc.compile(program).graph(*([1.5] * program.n_args))
        except (ArithmeticError, graphc.UnsupportedError):
            continue            # Python arithmetic on two constants (1.0 / 0.0) at trace time
        seen |= {g[n].op for n in g}
    with_form = {name for name, p in REGISTRY.items() if p.scalar is not None}
    # identity and stop_gradient never appear in a trace of these calls; masked_mul only
    # in gradients
    assert with_form - seen <= {"identity", "stop_gradient", "masked_mul"}, with_form - seen
