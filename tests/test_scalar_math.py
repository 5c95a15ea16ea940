"""Python-float signatures run a `math` body first (graphc/codegen_scalar.py).

Every claim is checked against the NumPy code the same function gets with the
`math` body turned off (``codegen_scalar.ENABLED = False``): the same values bit
for bit (signed zeros and nans included), the same result types, the same
warnings and errors, over random inputs and special values; gradients also
against finite differences.
"""
from __future__ import annotations

import itertools
import math
import operator
import random
import re
import threading
import warnings

import numpy as np
import pytest

import graphc
from graphc import codegen_scalar, scalar_agreement
from graphc.primitive import REGISTRY

from _fd import fd_grad_args, rel_err
from functions import lecture
import _libm

SPECIAL = [0.0, -0.0, 1.0, -1.0, 0.5, 2.0, -3.0, math.inf, -math.inf, math.nan, 1e308, -1e308,
           5e-324, -5e-324, 1e-310, 710.0, -745.5, 1e200, 1e-200, 3.0, 0.9999999999999999]

UNARY = {"neg": operator.neg, "exp": np.exp, "log": np.log, "sin": np.sin, "cos": np.cos,
         "tan": np.tan, "tanh": np.tanh, "sqrt": np.sqrt, "log1p": np.log1p, "expm1": np.expm1,
         "abs": np.abs, "arcsin": np.arcsin, "arccos": np.arccos, "arctan": np.arctan,
         "cbrt": np.cbrt, "reciprocal": np.reciprocal, "log2": np.log2, "log10": np.log10,
         "exp2": np.exp2, "sinh": np.sinh, "cosh": np.cosh, "arcsinh": np.arcsinh,
         "arccosh": np.arccosh, "arctanh": np.arctanh}
BINARY = {"add": operator.add, "sub": operator.sub, "mul": operator.mul, "div": operator.truediv,
          "pow": operator.pow, "hypot": np.hypot, "arctan2": np.arctan2,
          # comparisons and where: a float64 result through np.where
          "gt": lambda x, y: np.where(x > y, x, y), "ge": lambda x, y: np.where(x >= y, y, x),
          "lt": lambda x, y: np.where(x < y, x - y, y), "le": lambda x, y: np.where(x <= y, x, 2.0),
          "eq": lambda x, y: np.where(x == y, x, y * 2), "ne": lambda x, y: np.where(x != y, 1.0, y)}


class numpy_only:
    """The compiled function ``make()`` with the `math` body turned off (today's code):
    its signatures are built while ``codegen_scalar.ENABLED`` is False."""

    def __init__(self, make):
        self.compiled = make()

    def _off(self, method, args, kwargs):
        codegen_scalar.ENABLED = False
        try:
            return method(*args, **kwargs)
        finally:
            codegen_scalar.ENABLED = True

    def __call__(self, *args, **kwargs):
        return self._off(self.compiled, args, kwargs)

    def source(self, *args, **kwargs):
        return self._off(self.compiled.source, args, kwargs)


def run(f, *args):
    """(result, warnings as (category, text), exception as (type, text))."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            out = f(*args)
            err = None
        except Exception as e:                      # noqa: BLE001 - compared below
            out, err = None, (type(e), str(e), e.__context__ is None)
    return out, [(w.category, str(w.message)) for w in caught], err


def same(a, b):
    """Equal pytrees of numbers: same types, same bits (nan == nan, 0.0 != -0.0)."""
    if isinstance(a, dict):
        return type(b) is dict and a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, (tuple, list)):
        return type(a) is type(b) and len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if type(a) is not type(b):
        return False
    if a is None or isinstance(a, str):
        return a == b
    fa, fb = float(a), float(b)
    if math.isnan(fa) or math.isnan(fb):
        return math.isnan(fa) and math.isnan(fb)
    return fa == fb and math.copysign(1.0, fa) == math.copysign(1.0, fb)


def assert_like_numpy(fast, slow, args):
    got, want = run(fast, *args), run(slow, *args)
    assert same(got[0], want[0]), (args, got[0], want[0])
    assert got[1] == want[1], (args, got[1], want[1])          # the same warnings
    assert got[2] == want[2], (args, got[2], want[2])          # the same error, not chained


def inputs(n, count, seed):
    rng = random.Random(seed)
    out = [tuple(rng.choice(SPECIAL) for _ in range(n)) for _ in range(count // 2)]
    for _ in range(count - len(out)):
        out.append(tuple(math.copysign(10.0 ** rng.uniform(-5, 3), rng.random() - 0.5)
                         if rng.random() < 0.7 else rng.uniform(-2, 2) for _ in range(n)))
    return out


def graph_ops(compiled, *args):
    g = compiled.graph(*args)
    return {g[n].op for n in g}


@pytest.mark.parametrize("op", sorted(UNARY) + sorted(BINARY))
def test_each_op_like_numpy(op):
    fn = UNARY.get(op) or BINARY[op]
    n = 1 if op in UNARY else 2
    fast = graphc.compile(fn)
    slow = numpy_only(lambda: graphc.compile(fn))
    args = (1.5,) * n
    assert op in graph_ops(fast, *args)
    src = fast.source(*args)
    assert ("import math" in src) == (scalar_agreement.scalar_form(op) is not None), src
    assert "import math" not in slow.source(*args)
    for a in inputs(n, 400, op):
        assert_like_numpy(fast, slow, a)


@pytest.mark.parametrize("op", sorted(UNARY) + ["div", "pow", "arctan2"])
def test_each_op_gradient_like_numpy(op):
    fn = UNARY.get(op) or BINARY[op]
    n = 1 if op in UNARY else 2
    argnums = tuple(range(n))
    fast = graphc.value_and_grad(fn, argnums=argnums)
    slow = numpy_only(lambda: graphc.value_and_grad(fn, argnums=argnums))
    for a in inputs(n, 200, "grad" + op):
        assert_like_numpy(fast, slow, a)


def test_this_machine_agrees_on_the_lecture_ops():
    """On this CPU NumPy's float64 scalar sin/cos/exp/log are the C library's: 0 ulp on
    20,000 inputs each (the build checks 600); tanh (NumPy's own SIMD code) and hypot
    (Python's own algorithm) differ, so they keep NumPy's code."""
    for op in ("add", "sub", "mul", "div", "neg", "exp", "log", "sin", "cos", "sqrt", "pow"):
        if not scalar_agreement.agrees(op):
            pytest.skip(f"NumPy's {op} differs from math's on this machine: NumPy code kept")
        assert scalar_agreement.agrees(op, 20_000), op
    ops = scalar_agreement.scalar_ops()
    assert set(ops) <= {name for name, p in REGISTRY.items() if p.scalar is not None}
    assert "tanh" not in ops or scalar_agreement.agrees("tanh", 20_000)
    assert "hypot" not in ops or scalar_agreement.agrees("hypot", 20_000)


def composite(x, y):
    a = np.log1p(x * x) + np.sqrt(np.abs(y) + 1.0) * np.cos(x - y)
    b = np.arctan(y / (1.0 + x * x)) - np.exp(-(x * x)) / (2.0 + np.sin(y))
    return a * b + x ** 3 - y ** 2 + np.cbrt(x * y) + np.where(x > y, x, y)


@pytest.mark.parametrize("f", [lecture, composite])
def test_value_and_grad_like_numpy_and_fd(f):
    fast = graphc.value_and_grad(f, argnums=(0, 1))
    slow = numpy_only(lambda: graphc.value_and_grad(f, argnums=(0, 1)))
    ops = ("sin", "cos", "exp") + (() if f is lecture else ("log1p", "sqrt", "arctan", "cbrt"))
    # math only where this CPU's libm gives NumPy's bits (tests/_libm.py); the values below
    # are NumPy's either way
    assert ("import math" in fast.source(1.5, 0.5)) == _libm.agree(*ops)
    for a in inputs(2, 400, f.__name__):
        assert_like_numpy(fast, slow, a)
    rng = np.random.default_rng(0)
    for _ in range(20):
        a = tuple(float(v) for v in rng.uniform(0.3, 2.0, 2))
        _, grads = fast(*a)
        want = fd_grad_args(lambda x, y: f(x, y), a, (0, 1))
        assert rel_err(np.array(grads), np.array(want)) < 1e-6


def test_result_types_and_constant_outputs():
    """np.float64 as before; a constant gradient stays what the NumPy code returns."""
    for make, args in [(lambda: graphc.grad(lambda x: 3 * x), (2.0,)),
                       (lambda: graphc.compile(lambda x, y: (x, 2.0, y * 1, {"s": x + y})), (2.0, 3.0)),
                       (lambda: graphc.value_and_grad(lambda x, y: x * y, argnums=1), (2.0, 3.0))]:
        fast, slow = make(), numpy_only(make)
        assert_like_numpy(fast, slow, args)
        assert same(fast(*args), slow(*args))


def test_fallback_special_values():
    """Where Python raises or a value is not finite, NumPy's code answers (and warns)."""
    f = graphc.value_and_grad(lambda x, y: np.log(x) / y + np.exp(x) - (-8.0 * y) ** (1 / 3),
                              argnums=(0, 1))
    slow = numpy_only(lambda: graphc.value_and_grad(
        lambda x, y: np.log(x) / y + np.exp(x) - (-8.0 * y) ** (1 / 3), argnums=(0, 1)))
    cases = [(0.0, 1.0), (1.0, 0.0), (1000.0, -1.0), (-1.0, -1.0), (2.0, 1.0), (2.0, -1.0),
             (1e-300, 1e-300), (math.nan, -1.0), (math.inf, -2.0)]
    for a in cases:
        assert_like_numpy(f, slow, a)
    out, caught, _ = run(f, 1.0, 0.0)
    assert any("divide by zero" in text for _, text in caught)


def test_overflow_inside_is_seen():
    """Python's x * y overflows to inf silently, NumPy warns: the check sends it to NumPy,
    also where the infinity disappears again (1 / inf, exp(-inf))."""
    for fn in (lambda x: 1.0 / (x * x), lambda x: np.exp(-(x * x)) + 1.0,
               lambda x: np.arctan(x * x), lambda x: np.where(x * x > 0, 1.0, 2.0) * x,
               lambda x: (x * x) ** 0.0, lambda x: np.tanh(x * x)):
        fast = graphc.compile(fn)
        slow = numpy_only(lambda: graphc.compile(fn))
        out, caught, _ = run(fast, 1e200)
        assert any("overflow" in text for _, text in caught), caught
        assert_like_numpy(fast, slow, (1e200,))
        assert_like_numpy(fast, slow, (3.0,))


def test_numpy_error_state_is_kept():
    f = graphc.compile(lambda x, y: np.exp(x) / y)
    slow = numpy_only(lambda: graphc.compile(lambda x, y: np.exp(x) / y))
    with np.errstate(all="raise"):
        for a in [(1.0, 0.0), (1000.0, 1.0), (1.0, 2.0), (-745.5, 1.0)]:
            assert_like_numpy(f, slow, a)
        with pytest.raises(FloatingPointError) as e:
            f(1.0, 0.0)
        assert e.value.__context__ is None         # not "during handling of ZeroDivisionError"
    with np.errstate(under="warn"):                 # exp(-745.5) underflows: NumPy warns
        assert_like_numpy(f, slow, (-745.5, 1.0))
        assert run(f, -745.5, 1.0)[1]
    with np.errstate(all="ignore"):
        for a in [(1.0, 0.0), (1000.0, 1.0), (1.0, 2.0), (-745.5, 1.0)]:
            assert_like_numpy(f, slow, a)
    old = np.seterr(under="raise")
    try:
        with pytest.raises(FloatingPointError):
            f(-745.5, 1.0)
    finally:
        np.seterr(**old)
    assert_like_numpy(f, slow, (-745.5, 1.0))       # the default again: the math body
    assert not run(f, -745.5, 1.0)[1]


def test_error_state_per_thread():
    f = graphc.compile(lambda x: np.exp(x))
    f(1.0)
    seen = {}

    def other():
        seen["default"] = run(f, -745.5)[1]

    with np.errstate(under="warn"):
        t = threading.Thread(target=other)
        t.start()
        t.join()
        here = run(f, -745.5)[1]
    assert seen["default"] == [] and here and "underflow" in here[0][1]


def test_check_finite_still_reports():
    f = graphc.value_and_grad(lambda x, y: x / y, argnums=(0, 1), check_finite=True)
    assert f(1.0, 2.0)[0] == 0.5
    with pytest.raises(graphc.GraphcError):
        f(1.0, 0.0)


def test_signatures_without_a_math_body():
    """Arrays, NumPy scalars, float32, ops without a scalar form: today's code."""
    cases = [(graphc.compile(lambda x, y: x * y), (np.float64(1.5), 2.0)),
             (graphc.compile(lambda x, y: x * y), (np.float32(1.5), 2.0)),
             (graphc.compile(lambda x, y: x * y), (np.ones(3), 2.0)),
             (graphc.compile(lambda x, y: np.maximum(x, y)), (1.5, 2.0)),
             (graphc.compile(lambda x, n: x ** n), (1.5, 3))]
    for f, args in cases[:4]:
        assert "import math" not in f.source(*args)
    f, args = cases[4]                                # a static int is a constant: math body
    assert "import math" in f.source(*args) and f(*args) == 1.5 ** 3


def test_fast_dispatch_keeps_signatures_apart():
    f = graphc.compile(lambda a, b: a * b ** 2)
    assert type(f(2.0, 3.0)) is np.float64 and f(2.0, 3.0) == 18.0
    assert f(2.0, 3) == 18.0 and f(np.float32(2.0), np.float32(3.0)).dtype == np.float32
    assert f(2.0, 3.0) == 18.0 and f(2.0, b=4.0) == 32.0
    g = graphc.compile(lambda a: a * 2.0)
    assert g(1.5) == 3.0
    w = np.array([1.0, 2.0])
    h = graphc.compile(lambda a: (a * w).sum())       # a closure: not on the float fast path
    assert h(2.0) == 6.0 and h(2.0) == 6.0
    w = np.array([3.0, 4.0])
    assert h(2.0) == 14.0
    f.cache_clear()
    assert f(2.0, 3.0) == 18.0


QUIET = sorted(name for name, p in REGISTRY.items() if p.scalar_quiet)


@pytest.fixture
def numpy_forms(monkeypatch):
    """The Python-float code calls NumPy's own function for every op with a quiet range,
    as on a CPU where NumPy has its own SIMD versions (AVX-512): on every machine."""
    real = scalar_agreement.agrees
    monkeypatch.setattr(scalar_agreement, "agrees",
                        lambda op, samples=scalar_agreement.SAMPLES: op not in QUIET and real(op))


@pytest.mark.parametrize("op", QUIET)
def test_numpy_form_like_numpy(op, numpy_forms):
    """NumPy's function on the Python float, inside the record's quiet range: NumPy's bits,
    and outside it NumPy's code, whose warnings and errors come once, as NumPy's do."""
    fn = UNARY.get(op) or BINARY[op]
    n = 1 if op in UNARY else 2
    fast = graphc.compile(fn)
    slow = numpy_only(lambda: graphc.compile(fn))
    src = fast.source(*(1.5,) * n)
    assert scalar_agreement.numpy_is_quiet(op), op        # NumPy warns nothing in the range
    assert f"float(np.{fn.__name__}(" in src and "_numpy_only()" in src, src
    for a in inputs(n, 400, "np" + op):
        assert_like_numpy(fast, slow, a)
    with np.errstate(over="raise", divide="raise", invalid="raise"):
        for a in itertools.product(SPECIAL[:12], repeat=n):
            assert_like_numpy(fast, slow, a)
    grad = graphc.value_and_grad(fn, argnums=tuple(range(n)))
    slow_grad = numpy_only(lambda: graphc.value_and_grad(fn, argnums=tuple(range(n))))
    for a in inputs(n, 100, "npgrad" + op):
        assert_like_numpy(grad, slow_grad, a)


def test_numpy_form_without_a_quiet_range_keeps_numpy(monkeypatch):
    """An op whose scalar form disagrees and that has no quiet range: NumPy's code only."""
    monkeypatch.setattr(scalar_agreement, "agrees", lambda op, samples=0: op != "pow")
    assert REGISTRY["pow"].scalar_quiet is None
    f = graphc.compile(lambda x, y: x ** y)
    assert "import math" not in f.source(3.0, 4.0) and f(3.0, 4.0) == 81.0


def test_golden_lecture_numpy_exp(monkeypatch):
    """W1 on a CPU whose NumPy exp is its own (AVX-512): `math` for the rest, NumPy's exp
    on the float below 709, where it cannot overflow."""
    monkeypatch.setattr(scalar_agreement, "agrees", lambda op, samples=0: op != "exp")
    from test_codegen import check_golden
    vg = graphc.value_and_grad(lecture, argnums=(0, 1))
    check_golden("lecture_value_and_grad_numpy_exp.py", vg.source(1.5, 0.5))
    slow = numpy_only(lambda: graphc.value_and_grad(lecture, argnums=(0, 1)))
    for a in inputs(2, 200, "lecture numpy exp") + [(1.5, 360.0), (1.5, 354.0)]:
        assert_like_numpy(vg, slow, a)


def test_golden_w1():
    """W1 (benchmarks/workloads.py w1_f) is the lecture's function (tests/functions.py)."""
    w1_f = lecture
    from test_codegen import check_golden
    for op in ("div", "mul", "sin", "cos", "exp", "sub", "add", "neg"):
        if not scalar_agreement.agrees(op):
            pytest.skip(f"{op}: NumPy differs from math on this machine")
    vg = graphc.value_and_grad(w1_f, argnums=(0, 1))
    check_golden("lecture_value_and_grad_math.py", vg.source(1.5, 0.5))


def test_float_subclass_keeps_numpy_semantics():
    """A float subclass's own arithmetic never runs: its signature gets NumPy's answer."""
    class Odd(float):
        def __mul__(self, other):
            return Odd(float(self) * other + 100.0)
    f = graphc.compile(lambda a, b: a * b + np.sin(a))
    want = numpy_only(lambda: graphc.compile(lambda a, b: a * b + np.sin(a)))(2.0, 3.0)
    assert same(f(Odd(2.0), Odd(3.0)), want) and same(f(2.0, 3.0), want)


def test_pytrees_keywords_defaults_and_aux():
    def loss(p, x, *, scale=2.0):
        y = p["w"] * x + p["b"]
        return scale * np.log1p(y * y), {"y": y, "tag": "fit"}
    make = lambda: graphc.value_and_grad(loss, has_aux=True)        # noqa: E731
    fast, slow = make(), numpy_only(make)
    for args, kw in [(({"w": 1.5, "b": -0.5}, 2.0), {}), (({"w": 1.5, "b": -0.5}, 2.0), {"scale": 3.0}),
                     (({"w": 1e200, "b": 0.0}, 1e200), {}), (({"w": 0.0, "b": -0.0}, 1.0), {})]:
        got, want = run(lambda: fast(*args, **kw)), run(lambda: slow(*args, **kw))
        assert same(got[0][0], want[0][0]) and same(got[0][1], want[0][1]), (got, want)
        assert got[1] == want[1]
    assert ("import math" in fast.source({"w": 1.5, "b": -0.5}, 2.0)) == _libm.agree("log1p")


def test_integer_and_fractional_powers():
    fn = lambda x: x ** 2 + x ** 3 - x ** -1 + x ** 0.5 + 2.0 ** x      # noqa: E731
    make = lambda: graphc.value_and_grad(fn)                            # noqa: E731
    fast, slow = make(), numpy_only(make)
    assert "math.pow" in fast.source(1.5)
    for (x,) in inputs(1, 400, "powers") + [(-2.0,), (-0.0,), (1e155,), (-1e-155,)]:
        assert_like_numpy(fast, slow, (x,))


def test_power_of_a_where_result_like_numpy(monkeypatch):
    """``np.where`` on floats gives NumPy's body a 0-d array, and ``**`` on it runs the
    power ufunc, not the C library's ``pow`` that ``np.float64 ** np.float64`` and
    ``math.pow`` call: an ulp apart on AVX-512 CPUs (found by tests/test_scalar_fuzz.py,
    ``pow(where(...), x)`` at 1.70648723572896)."""
    assert scalar_agreement.makes_array("where")
    assert not any(scalar_agreement.makes_array(op) for op in ("add", "pow", "exp", "maximum"))
    fn = lambda x, y: np.where(x <= -0.0, x, 2.0) ** x + y ** x       # noqa: E731
    for make in (lambda: graphc.compile(fn), lambda: graphc.value_and_grad(fn, argnums=(0, 1))):
        fast, slow = make(), numpy_only(make)
        args = [(1.70648723572896, 2.0)] + inputs(2, 300, "where pow")
        for a in args:
            assert_like_numpy(fast, slow, a)
        src = fast.source(1.5, 2.0)
        assert ("math.pow" in src) == scalar_agreement.agrees_on_arrays("pow"), src
    # where the two differ, the graph keeps NumPy's body; a pow of plain floats keeps math
    scalar_agreement.agrees_on_arrays.cache_clear()
    monkeypatch.setattr(scalar_agreement, "agrees_on_arrays", lambda op, samples=0: op != "pow")
    assert "import math" not in graphc.compile(fn).source(1.5, 2.0)
    assert ("math.pow" in graphc.compile(lambda x, y: y ** x).source(1.5, 2.0)) \
        == scalar_agreement.agrees("pow")


def test_float_conditions_are_checked():
    """np.where and np.logical_not of a float: an overflow to inf in the condition warns."""
    for fn in (lambda x: np.where(x * x, 1.0, 2.0) * x,
               lambda x: np.where(np.logical_not(x * x), 1.0, 2.0) * x):
        fast = graphc.compile(fn)
        slow = numpy_only(lambda: graphc.compile(fn))
        for a in [(1e200,), (0.0,), (-0.0,), (3.0,), (math.nan,), (math.inf,)]:
            assert_like_numpy(fast, slow, a)
        assert run(fast, 1e200)[1]


@pytest.mark.parametrize("op", sorted(n for n, p in REGISTRY.items() if p.scalar is not None))
def test_scalar_masks_are_complete(op):
    """An argument position not in ``scalar_masks``: a non-finite value there gives a
    non-finite result (or an exception), whatever the other arguments are."""
    prim = REGISTRY[op]
    n = len(set(re.findall(r"\{(\d)\}", prim.scalar)))
    f = eval(f"lambda a, b=0.0, c=0.0: {prim.scalar.format('a', 'b', 'c')}", {"math": math})
    others = [0.0, -0.0, 1.0, -1.0, 2.5, 1e308, 5e-324, math.inf, -math.inf, math.nan, True, False]
    for i in set(range(n)) - set(prim.scalar_masks):
        for bad in (math.inf, -math.inf, math.nan):
            for rest in itertools.product(others, repeat=n - 1):
                args = list(rest)
                args.insert(i, bad)
                try:
                    out = f(*args)
                except (ArithmeticError, ValueError):
                    continue
                assert isinstance(out, float) and not math.isfinite(out), (op, args, out)
