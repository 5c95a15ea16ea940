"""graphc.fori_loop and graphc.while_loop: rolled loops, runtime trip counts, reverse mode."""
import numpy as np
import pytest

import graphc
from tests._fd import fd_grad_args, rel_err
from tests.test_codegen import check_golden


def power(x, n):
    return graphc.fori_loop(0, n, lambda i, y: y * x + 0.1 * i, np.ones_like(x))


def power_ref(x, n):
    y = np.ones_like(x)
    for i in range(n):
        y = y * x + 0.1 * i
    return y


def test_fori_static_bounds_value_code_and_grad():
    x = np.array([0.5, 1.5, -0.7])
    f = graphc.compile(power)
    np.testing.assert_allclose(f(x, 4), power_ref(x, 4))
    np.testing.assert_allclose(power(x, 4), power_ref(x, 4))     # eager
    assert "for t in range(4):" in f.source(x, 4)
    g = graphc.grad(lambda x: power(x, 4).sum())(x)
    fd = fd_grad_args(lambda x: power_ref(x, 4).sum(), (x,), (0,))[0]
    assert rel_err(g, fd) < 1e-7


def test_fori_traced_bounds_one_path_several_trip_counts():
    traces = []

    def f(x, bounds):
        lo, hi = bounds[0], bounds[1]          # traced integers

        def body(i, y):
            traces.append(1)
            return np.sin(y) * x + 0.01 * i
        return graphc.fori_loop(lo, hi, body, x).sum()

    def ref(x, lo, hi):
        y = x
        for i in range(lo, hi):
            y = np.sin(y) * x + 0.01 * i
        return y.sum()
    g, cf = graphc.grad(f), graphc.compile(f)
    x = np.array([0.3, 0.8])
    for lo, hi in ((0, 3), (2, 7), (1, 1), (0, 12)):
        b = np.array([lo, hi])
        assert cf(x, b) == pytest.approx(ref(x, lo, hi), rel=1e-12)
        fd = fd_grad_args(lambda x: ref(x, lo, hi), (x,), (0,))[0]
        assert rel_err(g(x, b), fd) < 1e-7
    src = g.source(x, np.array([0, 3]))
    assert "for t in range(" in src and "reversed(" in src
    assert len(traces) == 2            # one trace each for compile and grad: one path


def newton_sqrt(a):
    def step(x):
        return 0.5 * (x + a / x)
    return graphc.while_loop(lambda x: np.abs(x * x - a) > 1e-10 * a, step, a)


def test_while_newton_sqrt_gradient_one_compiled_path():
    traced = []

    def f(a):
        traced.append(1)
        return newton_sqrt(a)
    g = graphc.grad(f)
    iterations = set()
    for a in (0.01, 2.0, 9.0, 1e4, 3e8):
        assert g(a) == pytest.approx(0.5 / np.sqrt(a), rel=1e-8)
        x, n = a, 0
        while abs(x * x - a) > 1e-10 * a:
            x, n = 0.5 * (x + a / x), n + 1
        iterations.add(n)
    assert len(iterations) >= 4           # different trip counts...
    assert len(traced) == 1               # ...one compiled path
    assert newton_sqrt(2.0) == pytest.approx(np.sqrt(2.0))          # eager
    assert graphc.compile(newton_sqrt)(2.0) == pytest.approx(np.sqrt(2.0))


def test_while_pytree_carry_and_captured_values_fd():
    def f(w, x0):
        def body(c):
            i, x = c["i"], c["x"]
            return {"i": i + 1, "x": np.tanh(x @ w) + 0.5 * x}
        out = graphc.while_loop(lambda c: c["i"] < 5, body, {"i": 0, "x": x0})
        return (out["x"] ** 2).sum()

    def ref(w, x0):
        x = x0
        for _ in range(5):
            x = np.tanh(x @ w) + 0.5 * x
        return (x ** 2).sum()
    rng = np.random.default_rng(0)
    args = (rng.normal(size=(3, 3)) * 0.5, rng.normal(size=3))
    assert graphc.compile(f)(*args) == pytest.approx(ref(*args), rel=1e-12)
    got = graphc.grad(f, argnums=(0, 1))(*args)
    for a, b in zip(got, fd_grad_args(ref, args, (0, 1))):
        assert rel_err(a, b) < 1e-7


def test_while_zero_iterations_gradient_is_identity():
    g = graphc.grad(lambda a: graphc.while_loop(lambda x: x < 10.0, lambda x: x * 2.0, a))
    assert g(20.0) == 1.0
    assert g(3.0) == 4.0                  # 3 -> 6 -> 12: x * 2 ** 2


def test_while_cond_must_be_boolean_scalar():
    with pytest.raises(graphc.ShapeError, match="boolean scalar") as e:
        graphc.compile(lambda x: graphc.while_loop(lambda c: c, lambda c: c, x))(np.ones(2))
    assert "test_loops.py" in e.value.where


def test_grad_of_grad_through_while_is_a_clear_error():
    with pytest.raises(graphc.GradError, match="not static"):
        graphc.grad(graphc.grad(newton_sqrt))(2.0)


def test_golden_while_gradient():
    check_golden("while_newton_grad.py", graphc.grad(newton_sqrt).source(2.0))


def test_interpreter_and_cost_of_while():
    from graphc.interpret import evaluate
    g = graphc.trace(newton_sqrt, 2.0)
    values = evaluate(g, [2.0])
    assert values[g.outputs[0]] == pytest.approx(np.sqrt(2.0))
    assert g.cost().forward_flops > 0


def test_large_loop_values_are_not_freed_too_early():
    n = 150_000                       # 1.2 MB arrays: generated code deletes large values

    def f(x, xs):
        big = np.exp(x)               # a large value used in the loop and after it
        c, ys = graphc.scan(lambda c, s: (c * 0.5 + big * s, None), np.sin(x), xs)
        return (c * big).sum() + big.sum()

    def terms(x, xs):                 # elementwise: central differences of all at once
        big, c = np.exp(x), np.sin(x)
        for s in xs:
            c = c * 0.5 + big * s
        return c * big + big
    x = np.linspace(-1, 1, n)
    xs = np.array([0.3, -0.2, 0.5])
    cf = graphc.compile(f)
    assert cf(x, xs) == pytest.approx(terms(x, xs).sum(), rel=1e-12)
    g = graphc.grad(f)
    fd = (terms(x + 1e-6, xs) - terms(x - 1e-6, xs)) / 2e-6
    np.testing.assert_allclose(g(x, xs), fd, rtol=1e-6)
    assert "del " in g.source(x, xs)


def test_body_value_escaping_its_loop_is_an_error():
    kept = []

    def f(x):
        def body(i, c):
            kept.append(c)
            return c * 2.0
        y = graphc.fori_loop(0, 3, body, x)
        return y + kept[0]
    with pytest.raises(graphc.EscapedTracerError):
        graphc.compile(f)(np.ones(2))


def test_scan_body_must_return_a_pair():
    with pytest.raises(graphc.ShapeError, match="pair") as e:
        graphc.compile(lambda x: graphc.scan(lambda c, x: c + x, 0.0, x))(np.ones(3))
    assert "test_loops.py" in e.value.where


def test_golden_fori_gradient():
    check_golden("fori_power_grad.py",
                 graphc.grad(lambda x: power(x, 3).sum()).source(np.array([0.5, 1.5])))
