"""graphc.scan: rolled loops, their generated code and their reverse mode."""
import time

import numpy as np
import pytest

import graphc
from tests._fd import fd_grad_args, rel_err
from tests.test_codegen import check_golden


def rnn_loss(Wx, Wh, b, h0, xs):
    def step(h, x):
        h = np.tanh(x @ Wx + h @ Wh + b)
        return h, h
    h, ys = graphc.scan(step, h0, xs)
    return (h ** 2).sum() + 0.1 * (ys ** 2).sum()


def rnn_args(T, seed=0):
    rng = np.random.default_rng(seed)
    return (rng.normal(size=(3, 5)) * 0.5, rng.normal(size=(5, 5)) * 0.4,
            rng.normal(size=5) * 0.1, rng.normal(size=5), rng.normal(size=(T, 3)))


def numpy_rnn_loss(Wx, Wh, b, h0, xs):
    h, total = h0, 0.0
    for x in xs:
        h = np.tanh(x @ Wx + h @ Wh + b)
        total = total + 0.1 * (h ** 2).sum()
    return (h ** 2).sum() + total


def test_forward_matches_python_loop_and_stays_rolled():
    args = rnn_args(50)
    f = graphc.compile(rnn_loss)
    assert f(*args) == pytest.approx(numpy_rnn_loss(*args), rel=1e-12)
    assert rnn_loss(*args) == pytest.approx(numpy_rnn_loss(*args), rel=1e-12)   # eager
    src = f.source(*args)
    assert "for t in range(50):" in src and src.count("np.tanh") == 1
    assert "tape" not in src                # written only when a backward pass reads it


def test_eager_scan_returns_numpy():
    carry, ys = graphc.scan(lambda c, x: (c + x, c * x), np.zeros(2), np.ones((4, 2)))
    assert isinstance(carry, np.ndarray) and isinstance(ys, np.ndarray)
    np.testing.assert_array_equal(carry, [4.0, 4.0])
    np.testing.assert_array_equal(ys[:, 0], [0.0, 1.0, 2.0, 3.0])
    c, ys = graphc.scan(lambda c, x: (c + x, c), 0.0, np.arange(3.0), reverse=True)
    assert c == 3.0 and list(ys) == [3.0, 2.0, 0.0]


def test_rnn_1000_steps_compiles_fast_same_size_and_matches_torch():
    torch = pytest.importorskip("torch")
    sizes = {}
    for T in (1000, 2000):
        args = rnn_args(T, seed=T)
        g = graphc.grad(rnn_loss, argnums=(0, 1, 2, 3, 4))
        t0 = time.perf_counter()
        grads = g(*args)
        elapsed = time.perf_counter() - t0
        assert elapsed < 1.0, f"compile + first call took {elapsed:.2f}s"
        src = g.source(*args)
        sizes[T] = (len(src), len(src.splitlines()))
        tt = [torch.tensor(a, dtype=torch.float64, requires_grad=True) for a in args]
        Wx, Wh, b, h0, xs = tt
        h, total = h0, 0.0
        for t in range(T):
            h = torch.tanh(xs[t] @ Wx + h @ Wh + b)
            total = total + 0.1 * (h ** 2).sum()
        ((h ** 2).sum() + total).backward()
        for mine, ref in zip(grads, tt):
            np.testing.assert_allclose(mine, ref.grad.numpy(), rtol=1e-10, atol=1e-10)
    assert sizes[1000] == sizes[2000]


def test_golden_scan_gradient():
    check_golden("scan_rnn_grad.py", graphc.grad(rnn_loss, argnums=(0, 1)).source(*rnn_args(4)))


def _check_fd(f, args, argnums, tol=1e-6):
    got = graphc.grad(f, argnums=argnums)(*args)
    want = fd_grad_args(f, args, argnums)
    for a, b in zip(got, want):
        assert rel_err(a, b) < tol, (a, b)


def test_fd_reverse_and_pytree_carry():
    def f(w, xs):
        def step(c, x):
            a, rest = c["a"], c["rest"]
            return {"a": np.sin(a * w) + x[0], "rest": [rest[0] * x[1] + a]}, (a * x).sum()
        c, ys = graphc.scan(step, {"a": np.ones(2), "rest": [np.zeros(2)]}, xs, reverse=True)
        return (c["a"] * c["rest"][0]).sum() + (ys ** 2).sum()
    rng = np.random.default_rng(1)
    _check_fd(f, (rng.normal(size=2), rng.normal(size=(6, 2))), (0, 1))


def test_fd_no_xs_ys_unused_carry_unused():
    def no_xs(w):
        c, _ = graphc.scan(lambda c, _: (np.cos(c) * w, None), np.ones(3), None, length=5)
        return c.sum()

    def carry_unused(w, xs):
        _, ys = graphc.scan(lambda c, x: (c, np.exp(x * w + c)), np.zeros(2), xs)
        return ys.sum()

    def ys_unused(w, xs):
        c, ys = graphc.scan(lambda c, x: (np.tanh(c + x * w), c * 3.0), np.zeros(2), xs)
        return c.sum()
    rng = np.random.default_rng(2)
    _check_fd(no_xs, (rng.normal(size=3),), (0,))
    _check_fd(carry_unused, (rng.normal(size=2), rng.normal(size=(4, 2))), (0, 1))
    _check_fd(ys_unused, (rng.normal(size=2), rng.normal(size=(4, 2))), (0, 1))


def test_grad_of_grad_through_scan():
    def f(x):
        c, _ = graphc.scan(lambda c, _: (np.sin(c) * x, None), x, None, length=3)
        return c

    def ref(x):
        c = x
        for _ in range(3):
            c = np.sin(c) * x
        return c
    d2 = graphc.grad(graphc.grad(f))(0.7)
    h = 1e-4
    fd = (ref(0.7 + h) - 2 * ref(0.7) + ref(0.7 - h)) / h ** 2
    assert d2 == pytest.approx(fd, rel=1e-5)


def test_nested_scan_and_closure_capture():
    def f(W, xs):
        def outer(c, x):
            inner, _ = graphc.scan(lambda d, _: (np.tanh(d @ W + x), None), c, None, length=2)
            return inner, inner.sum()
        c, ys = graphc.scan(outer, np.zeros(2), xs)
        return c.sum() + ys.sum()
    rng = np.random.default_rng(3)
    args = (rng.normal(size=(2, 2)), rng.normal(size=(3, 2)))
    assert graphc.compile(f)(*args) == pytest.approx(f(*args), rel=1e-12)
    _check_fd(f, args, (0, 1))


def test_carry_type_change_is_a_clear_error():
    def f(x):
        c, _ = graphc.scan(lambda c, _: (np.ones(3) * c.sum(), None), np.zeros(2), None,
                           length=2)
        return c
    with pytest.raises(graphc.ShapeError, match=r"carry.*f64\[3\].*f64\[2\]") as e:
        graphc.compile(f)(np.zeros(2))
    assert "test_scan.py" in (e.value.where or "")


def test_python_float_carry_takes_float32():
    def f(x):
        c, ys = graphc.scan(lambda c, x: (c + x, c * 2.0), np.float32(0), x)
        return c, ys
    c, ys = graphc.compile(f)(np.ones(3, np.float32))
    assert c.dtype == np.float32 and ys.dtype == np.float32 and c == 3


def test_cost_multiplies_by_trip_count():
    g = graphc.trace(rnn_loss, *rnn_args(10))
    g100 = graphc.trace(rnn_loss, *rnn_args(100))
    assert g100.cost().forward_flops > 9 * g.cost().forward_flops


def test_trace_text_shows_body_indented():
    text = str(graphc.trace(rnn_loss, *rnn_args(7)))
    lines = text.splitlines()
    i = next(k for k, line in enumerate(lines) if line.strip().startswith("for t in range(7)"))
    assert lines[i + 1].startswith(" " * 8) and "tanh" in text


def test_interpreter_evaluates_scan():
    from graphc.interpret import evaluate
    args = rnn_args(6)
    g = graphc.trace(rnn_loss, *args)
    values = evaluate(g, list(args))
    assert values[g.outputs[0]] == pytest.approx(numpy_rnn_loss(*args), rel=1e-12)


def test_check_finite_points_into_the_body():
    def f(x):
        c, _ = graphc.scan(lambda c, x: (c + np.log(x), c), 0.0, x)
        return c
    cf = graphc.compile(f, check_finite=True)
    assert cf(np.array([1.0, 2.0])) == pytest.approx(np.log(2.0))
    with pytest.raises(graphc.NonFiniteError, match=r"step 1 of the scan.*np.log") as e:
        with np.errstate(invalid="ignore"):
            cf(np.array([1.0, -2.0]))
    assert "test_scan.py" in e.value.where


def test_check_is_numeric_not_proved_for_loops():
    def f(x):
        c, _ = graphc.scan(lambda c, _: (np.sin(c) * x, None), x, None, length=3)
        return c
    report = graphc.check(f, 0.7)
    assert report.ok and all(row.status == "numeric" for row in report.rows)


def test_draw_shows_body_cluster_with_trip_count():
    dot = graphc.trace(rnn_loss, *rnn_args(1000)).to_dot().source
    assert "scan × 1000" in dot and "cluster_" in dot


def test_passes_run_inside_bodies():
    def f(x, xs):
        c, ys = graphc.scan(lambda c, x: (c + np.sin(x) * np.sin(x), c * 0.0 + np.sin(x)), x, xs)
        return c
    src = graphc.compile(f).source(0.0, np.ones(3))
    assert src.count("np.sin") == 1            # CSE inside the body; the unused ys dropped
    assert "np.empty" not in src


def test_python_number_carry_is_weak_like_jax():
    def f(xs):
        c, ys = graphc.scan(lambda c, x: (c + x, c), 0.0, xs)
        return c, ys
    c, ys = graphc.compile(f)(np.ones(3, np.float32))
    assert c.dtype == np.float32 and ys.dtype == np.float32 and c == 3
    c64, _ = graphc.compile(f)(np.ones(3))
    assert c64.dtype == np.float64


def test_zero_length_scan():
    c, ys = graphc.scan(lambda c, x: (c + x, x * 2.0), np.ones(2), np.zeros((0, 2)))
    assert ys.shape == (0, 2) and list(c) == [1.0, 1.0]
    f = graphc.compile(lambda xs: graphc.scan(lambda c, x: (c + x, x * 2.0), np.ones(2), xs))
    c, ys = f(np.zeros((0, 2)))
    assert ys.shape == (0, 2) and list(c) == [1.0, 1.0]
    g = graphc.grad(lambda w, xs: graphc.scan(lambda c, x: (c * w + x, None), w, xs)[0].sum())
    assert list(g(np.ones(2), np.zeros((0, 2)))) == [1.0, 1.0]


def test_second_order_with_captured_weights_and_reverse():
    def f(w, xs):
        c, ys = graphc.scan(lambda c, x: (np.tanh(c * w + x), c * x), np.array([0.1, -0.2]), xs,
                            reverse=True)
        return (c ** 2).sum() + ys.sum()

    def g(w, xs):            # a scalar of the gradient, differentiated again
        gw, gx = graphc.grad(f, argnums=(0, 1))(w, xs)
        return (gw * np.array([1.0, -2.0])).sum() + (gx ** 2).sum()
    rng = np.random.default_rng(4)
    w, xs = rng.normal(size=2), rng.normal(size=(4, 2))
    got = graphc.grad(g, argnums=(0, 1))(w, xs)
    want = fd_grad_args(lambda w, xs: float(graphc.compile(g)(w, xs)), (w, xs), (0, 1))
    for a, b in zip(got, want):
        assert rel_err(a, b) < 1e-6
