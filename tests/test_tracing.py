"""Tracing: names, locations, the evaluation trace, pytrees, static args and every
tracing error of API.md section 6 (message names the user's file:line; no state left)."""
import sys

import numpy as np
import pytest

import graphc
from graphc.tracing import current_trace
from functions import lecture

HERE = __file__.rsplit("/", 1)[-1]


def line_of(fn, text):
    """The line number of ``text`` inside ``fn``'s source."""
    import inspect
    lines, start = inspect.getsourcelines(fn)
    for i, line in enumerate(lines):
        if text in line:
            return start + i
    raise AssertionError(text)


def assert_clean():
    assert current_trace() is None
    assert sys.getprofile() is None


# --- the IR -------------------------------------------------------------------------
def test_trace_nodes_carry_api_attributes():
    g = graphc.trace(lecture, 1.5, 0.5)
    assert isinstance(g, graphc.Graph)
    import networkx as nx
    assert isinstance(g.nx, nx.MultiDiGraph)
    for nid in g.nx.nodes:
        d = g.nx.nodes[nid]
        for attr in ("op", "shape", "dtype", "name", "params", "where"):
            assert attr in d
    names = {g.nx.nodes[n]["name"] for n in g.nx.nodes}
    assert {"w1", "w2", "z1", "z2", "z3", "z4", "z5"} <= names
    ops = [g.nx.nodes[n]["op"] for n in g.order()]
    assert ops.count("div") == 1 and ops.count("sin") == 1 and ops.count("exp") == 1
    assert [g.nx.nodes[n]["name"] for n in g.inputs] == ["w1", "w2"]
    g.check()


def test_trace_text_is_the_evaluation_trace():
    text = str(graphc.trace(lecture, 1.5, 0.5))
    lines = text.splitlines()
    assert lines[0] == "lecture(w1: f64[], w2: f64[]):"
    assert lines[1].split("#")[0].strip() == "z1 = w1 / w2"
    assert lines[1].endswith("# f64[]  functions.py:6")
    assert lines[-1].strip().startswith("return ")
    body = [line for line in lines[1:-1] if line.strip()]
    assert len(body) == 9   # one line per operation


def test_edges_record_argument_positions():
    g = graphc.trace(lambda x: x * x, np.ones(2))
    mul = [n for n in g.nx.nodes if g.nx.nodes[n]["op"] == "mul"][0]
    edges = sorted(d["argnum"] for _, _, d in g.nx.in_edges(mul, data=True))
    assert edges == [0, 1]


def test_where_is_the_users_line():
    def f(x):
        y = np.exp(x)
        return y.sum()
    g = graphc.trace(f, np.ones(3))
    exp = [n for n in g.nx.nodes if g.nx.nodes[n]["op"] == "exp"][0]
    assert g.nx.nodes[exp]["where"].endswith(f"{HERE}:{line_of(f, 'np.exp(x)')}")


def test_names_from_helpers_and_rebinding():
    def layer(x, w):
        pre = x @ w
        return np.tanh(pre)

    def f(x, w1, w2):
        h = layer(x, w1)
        out = layer(h, w2)
        out = out * 2.0
        return out.sum()
    g = graphc.trace(f, np.ones((2, 3)), np.ones((3, 3)), np.ones((3, 3)))
    names = [g.nx.nodes[n]["name"] for n in g.order()]
    assert "h" in names and "pre" in names and "out" in names


def test_pytrees_and_static_args():
    def f(p, xs, scale, mode):
        assert isinstance(scale, int) and mode == "sum"
        return (p["a"] * xs[0] + xs[1][0]).sum() * scale
    p = {"a": np.ones(2)}
    xs = [np.ones(2), (np.full(2, 3.0),)]
    g = graphc.trace(f, p, xs, 3, "sum")
    assert len(g.inputs) == 3
    df = graphc.grad(f, argnums=(0, 1))
    gp, gxs = df(p, xs, 3, "sum")
    assert set(gp) == {"a"} and isinstance(gxs, list) and isinstance(gxs[1], tuple)
    np.testing.assert_array_equal(gp["a"], [3.0, 3.0])
    np.testing.assert_array_equal(gxs[1][0], [3.0, 3.0])


def test_kwargs_and_defaults():
    def f(x, *, scale=2.0, power=2):
        return np.sum(scale * x ** power)
    df = graphc.grad(f)
    np.testing.assert_allclose(df(np.array([1.0, 2.0])), [4.0, 8.0])
    np.testing.assert_allclose(df(np.array([1.0, 2.0]), scale=1.0, power=3), [3.0, 12.0])


def test_shapes_are_static_and_loops_unroll():
    def f(x):
        total = 0.0
        for row in x:
            total = total + row.sum() * len(x)
        return total + x.shape[1] + x.ndim
    x = np.arange(6.0).reshape(3, 2)
    assert graphc.compile(f)(x) == f(x)
    np.testing.assert_allclose(graphc.grad(f)(x), np.full((3, 2), 3.0))


def test_augmented_assignment_rebinds():
    def f(x):
        y = x * 1.0
        y += 1.0
        y *= x
        return y.sum()
    x = np.array([1.0, 2.0])
    np.testing.assert_allclose(graphc.grad(f)(x), 2 * x + 1)


def test_spec_placeholders():
    g = graphc.trace(lambda x: np.tanh(x).sum(), graphc.Spec((64, 10), "float32"))
    assert g.nx.nodes[g.inputs[0]]["shape"] == (64, 10)
    src = graphc.grad(lambda x: np.tanh(x).sum()).source(graphc.Spec((4,), "float32"))
    assert "f32[4]" in src
    with pytest.raises(graphc.GraphcError, match="Spec"):
        graphc.compile(lambda x: x * 2.0)(graphc.Spec((2,)))


def test_nep50_python_floats_do_not_promote():
    def f(x, s):
        return (x * s + 1.5).sum()
    x = np.ones(3, np.float32)
    g = graphc.trace(f, x, 2.0)
    assert g.nx.nodes[g.outputs[0]]["dtype"] == np.float32
    assert graphc.compile(f)(x, 2.0).dtype == np.float32
    gx, gs = graphc.grad(f, argnums=(0, 1))(x, 2.0)
    assert gx.dtype == np.float32 and np.float64(gs) == 3.0


def test_numpy_scalars_are_traced_and_strong():
    def f(x, k):
        return (x * k).sum()
    x = np.ones(2, np.float32)
    assert graphc.compile(f)(x, np.float64(2.0)).dtype == np.float64
    calls = []

    def g(x, k):
        calls.append(1)
        return (x * k).sum()
    cg = graphc.compile(g)
    cg(x, np.int64(1))
    cg(x, np.int64(5))
    assert len(calls) == 1   # an integer NumPy scalar is traced data, not static


# --- errors (API.md section 6) ----------------------------------------------------------
def run_error(fn, *args, kind=graphc.GraphcError, match=None, builtin=None):
    with pytest.raises(kind) as info:
        fn(*args)
    assert_clean()
    msg = str(info.value)
    if match:
        assert match in msg, msg
    if builtin:
        assert isinstance(info.value, builtin)
    assert "Tracer" not in msg and "<traced" not in msg
    return msg


def test_error_control_flow():
    # (issue 15: with example arrays an `if` is a guard, tests/test_guards.py; with
    # graphc.Spec placeholders there is no value to decide on)
    def f(x):
        if x.sum() > 0:
            return x
        return -x
    msg = run_error(graphc.trace, f, graphc.Spec((3,)), kind=graphc.ControlFlowError,
                    builtin=TypeError)
    assert f"{HERE}:{line_of(f, 'if x.sum()')}" in msg
    assert "np.where" in msg and "graphc.cond" in msg and "graphc.while_loop" in msg


@pytest.mark.parametrize("conv", [float, int])      # bool(): a guard (tests/test_guards.py)
def test_error_concrete_conversions(conv):
    def f(x):
        return conv(x.sum()) * 2.0
    msg = run_error(graphc.grad(f), np.ones(3), kind=graphc.ControlFlowError)
    assert f"{HERE}:{line_of(f, 'conv(x.sum())')}" in msg


def test_error_inplace_assignment():
    """A write is a functional update; a view used after a write into its array is the error."""
    def f(x):
        y = x * 2
        v = y[:2]
        y[0] = 1.0
        return v.sum()
    msg = run_error(graphc.trace, f, np.ones(3), kind=graphc.InPlaceError, builtin=TypeError)
    assert f"{HERE}:{line_of(f, 'v = y[:2]')}" in msg
    assert f"{HERE}:{line_of(f, 'y[0] = 1.0')}" in msg


def test_error_inplace_on_a_view():
    def f(x):
        v = x[1:]
        v += 1.0
        return x.sum()
    run_error(graphc.trace, f, np.ones(3), kind=graphc.InPlaceError)


def test_error_out_argument():
    def f(x):
        y = np.empty(3)
        np.exp(x, out=y)
        return y.sum()
    run_error(graphc.trace, f, np.ones(3), kind=graphc.InPlaceError)


def test_error_unsupported_numpy_function():
    def f(x):
        return np.linalg.eig(x)   # complex results: out of scope (issue 14)
    msg = run_error(graphc.trace, f, np.eye(3), kind=graphc.UnsupportedError, builtin=TypeError)
    assert "np.linalg.eig" in msg and f"{HERE}:{line_of(f, 'np.linalg.eig')}" in msg


def test_error_unsupported_ufunc():
    def f(x):
        return np.spacing(x).sum()
    msg = run_error(graphc.trace, f, np.ones(3), kind=graphc.UnsupportedError)
    assert "np.spacing" in msg


def test_error_unsupported_dtype():
    run_error(graphc.trace, lambda x: x * 2, np.ones(2, complex), kind=graphc.UnsupportedError,
              match="complex128")


def test_error_shape_mismatch_matmul():
    def f(x, w):
        return (x @ w).sum()
    msg = run_error(graphc.trace, f, np.ones((2, 3)), np.ones((4, 5)), kind=graphc.ShapeError,
                    builtin=ValueError)
    assert "f64[2,3]" in msg and "f64[4,5]" in msg and f"{HERE}:{line_of(f, 'x @ w')}" in msg


def test_error_shape_mismatch_broadcast():
    def f(x, y):
        return (x + y).sum()
    msg = run_error(graphc.trace, f, np.ones((2, 3)), np.ones(4), kind=graphc.ShapeError)
    assert "f64[2,3]" in msg and "f64[4]" in msg


def test_error_reshape():
    run_error(graphc.trace, lambda x: x.reshape(4, 2), np.ones(6), kind=graphc.ShapeError,
              match="reshape")


def test_error_index_out_of_range():
    with pytest.raises(IndexError) as info:
        graphc.trace(lambda x: x[5], np.ones(3))
    assert isinstance(info.value, graphc.GraphcError)
    assert_clean()


def test_error_grad_nonscalar_output():
    def f(x):
        return x * 2.0
    msg = run_error(graphc.grad(f), np.ones(3), kind=graphc.GradError, match="scalar")
    assert "f64[3]" in msg and f"{HERE}:{line_of(f, 'x * 2.0')}" in msg
    assert isinstance(msg, str)


def test_error_grad_integer_output():
    run_error(graphc.grad(lambda x: (x > 0).sum()), np.ones(3), kind=graphc.GradError,
              match="floating")


def test_error_argnums_out_of_range():
    def f(x, y):
        return (x * y).sum()
    msg = run_error(graphc.grad(f, argnums=2), np.ones(2), np.ones(2), kind=graphc.GradError,
                    builtin=ValueError)
    assert "argnums=2" in msg and f"{HERE}:" in msg


def test_error_integer_argument_for_gradient():
    def f(x, n):
        return (x * n).sum()
    run_error(graphc.grad(f, argnums=1), np.ones(2), np.arange(2), kind=graphc.GradError,
              match="integer", builtin=TypeError)


def test_error_bad_argnums_type():
    with pytest.raises(graphc.GradError):
        graphc.grad(lambda x: x, argnums="0")


def test_error_escaped_tracer():
    leaked = []

    def f(x):
        leaked.append(x)
        return x.sum()
    graphc.trace(f, np.ones(2))
    with pytest.raises(graphc.GraphcError, match="after"):
        np.exp(leaked[0])
    assert_clean()


def test_error_leaves_no_state_and_next_trace_works():
    def bad(x):
        return x[0] * float(x.sum())    # float() of a differentiated value
    for _ in range(3):
        with pytest.raises(graphc.ControlFlowError):
            graphc.grad(bad)(np.ones(3))
        assert_clean()
    assert graphc.grad(lambda x: np.sum(x * x))(np.ones(2)).tolist() == [2.0, 2.0]


def test_errors_are_subclasses_of_builtins():
    assert issubclass(graphc.ControlFlowError, TypeError)
    assert issubclass(graphc.InPlaceError, TypeError)
    assert issubclass(graphc.UnsupportedError, TypeError)
    assert issubclass(graphc.ShapeError, ValueError)
    assert issubclass(graphc.GradError, (TypeError, ValueError))
    for cls in (graphc.ControlFlowError, graphc.InPlaceError, graphc.UnsupportedError,
                graphc.ShapeError, graphc.GradError):
        assert issubclass(cls, graphc.GraphcError)
