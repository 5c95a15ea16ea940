"""Tracing with guards (issue 15, API.md section 8): Python control flow on traced values."""
import importlib.util
import math
import warnings

import numpy as np
import pytest

import graphc
from graphc.errors import GraphcWarning
from graphc.guard_paths import MAX_PATHS, Paths


def piecewise(x):          # (first in the file: the golden file names its lines)
    if x > 0:
        return x ** 2
    return -x


# --- helpers ------------------------------------------------------------------------------
def counted(fn):
    """``fn`` with a counter of how many times it ran (each run of the Python body = one trace)."""
    def wrapper(*args, **kwargs):
        wrapper.calls += 1
        return fn(*args, **kwargs)
    wrapper.calls = 0
    wrapper.__name__ = fn.__name__
    return wrapper


def paths_of(compiled):
    entries = list(compiled._cache.values())
    assert len(entries) == 1
    return entries[0]


def n_guards(graph):
    return sum(1 for n in graph if graph[n].op == "guard")


# --- the if/else path: values, gradients, caching --------------------------------------
def test_grad_of_an_if_is_the_gradient_of_the_path_taken_and_each_path_is_traced_once():
    f = counted(piecewise)
    df = graphc.grad(f)
    assert df(2.0) == 4.0                    # d/dx x**2 = 2x
    assert df(-3.0) == -1.0                  # d/dx -x = -1
    assert f.calls == 2
    for x in (5.0, -1.0, 0.5, -7.25, 3.0):
        assert df(x) == (2 * x if x > 0 else -1.0)
    assert f.calls == 2                      # both paths cached
    entry = paths_of(df)
    assert isinstance(entry, Paths) and [p.decisions for p in entry.paths] == [(True,), (False,)]


def test_generated_code_checks_the_guard_where_it_was_taken():
    src = graphc.grad(piecewise).source(2.0)
    lines = src.splitlines()
    i = next(k for k, line in enumerate(lines) if "if not (x > 0):" in line)
    assert "test_guards.py:15" in lines[i]
    assert lines[i + 1].strip() == "raise GuardFailed(0, False, True, 'x > 0', 'test_guards.py:15')"
    assert "class GuardFailed(ValueError):" in src
    assert [line for line in lines if line.startswith("import")] == ["import numpy as np"]


def test_guard_failure_in_the_generated_module_is_a_value_error_with_the_facts():
    src = graphc.compile(piecewise).source(2.0)
    ns = {}
    exec(compile(src, "piecewise_gen.py", "exec"), ns)
    assert ns["piecewise"](3.0) == 9.0
    with pytest.raises(ValueError, match=r"test_guards.py:15: x > 0 is False") as info:
        ns["piecewise"](-1.0)
    e = info.value
    assert type(e).__name__ == "GuardFailed"
    assert (e.index, e.value, e.expected, e.condition, e.where) == \
        (0, False, True, "x > 0", "test_guards.py:15")


def test_evaluation_trace_prints_the_guard():
    text = str(graphc.trace(piecewise, 2.0))
    assert "guard (x > 0) is True" in text
    line = next(ln for ln in text.splitlines() if ln.strip().startswith("guard"))
    assert line.rstrip().endswith("# test_guards.py:15")
    text = str(graphc.trace(piecewise, -2.0))
    assert "guard (x > 0) is False" in text


def test_golden_guarded_gradient_with_both_paths():
    from test_codegen import check_golden
    df = graphc.grad(piecewise)
    df(2.0)
    df(-3.0)
    check_golden("guarded_grad.py", df.source(2.0))


# --- chains, boolean operators, assert ------------------------------------------------------
def test_if_elif_else_chain():
    def f(x):
        if x < -1.0:
            return np.sin(x)
        elif x < 1.0:
            return x ** 3
        else:
            return np.exp(x)
    f = counted(f)
    df, cf = graphc.grad(f), graphc.compile(f)
    for x in (-2.0, 0.5, 3.0, -1.5, -0.25, 1.0):
        want = np.cos(x) if x < -1 else (3 * x ** 2 if x < 1 else np.exp(x))
        assert df(x) == pytest.approx(want, rel=1e-14)
        assert cf(x) == pytest.approx(np.sin(x) if x < -1 else (x ** 3 if x < 1 else np.exp(x)))
    assert f.calls == 6                      # three paths, each traced once per transform
    assert len(paths_of(df).paths) == 3


def test_and_or_not():
    def f(x, y):
        if x > 0 and y > 0:
            return x * y
        if not (x > 1) or y < -1:
            return x + y
        return x - y
    df = graphc.grad(f, argnums=(0, 1))
    for x, y in [(1.0, 2.0), (0.5, -0.5), (2.0, -3.0), (2.0, -0.5), (-1.0, 1.0)]:
        if x > 0 and y > 0:
            want = (y, x)
        elif not (x > 1) or y < -1:
            want = (1.0, 1.0)
        else:
            want = (1.0, -1.0)
        assert df(x, y) == want


def test_assert_on_a_traced_value():
    def f(x):
        assert x.min() > 0, "x must be positive"
        return np.log(x).sum()
    df = graphc.grad(f)
    np.testing.assert_allclose(df(np.array([1.0, 2.0])), [1.0, 0.5])
    np.testing.assert_allclose(df(np.array([4.0, 0.5])), [0.25, 2.0])
    with pytest.raises(AssertionError, match="x must be positive"):
        df(np.array([1.0, -2.0]))            # the other path: the user's own assert raises


# --- while loops --------------------------------------------------------------------------
def newton_sqrt(a):
    x = a
    err = 1.0
    while err > 1e-12:
        x_new = 0.5 * (x + a / x)
        err = abs(x_new - x)
        x = x_new
    return x


def test_newton_while_loop_differentiates_at_different_iteration_counts():
    f = counted(newton_sqrt)
    df = graphc.grad(f)
    points = [2.0, 100.0, 1e6, 0.01, 2.5, 3.0, 90.0]
    for a in points:
        assert df(a) == pytest.approx(0.5 / math.sqrt(a), rel=1e-8, abs=1e-8)
    entry = paths_of(df)
    counts = sorted(len(p.decisions) for p in entry.paths)
    assert len(set(counts)) == len(counts) >= 3          # one path per iteration count
    assert f.calls == len(entry.paths)                  # each traced once
    for a in points:                                     # all cached now
        df(a)
    assert f.calls == len(entry.paths)


def test_guards_in_a_loop_evaluate_each_node_once(monkeypatch):
    import graphc.guards as G
    calls = []
    real = G.evaluate_node
    monkeypatch.setattr(G, "evaluate_node", lambda g, n, a: calls.append(n) or real(g, n, a))

    def f(x):
        k = 0
        while x.sum() < 300.0:
            x = x * 1.01 + 0.1
            k += 1
        return x
    g = graphc.trace(f, np.ones(3))
    assert n_guards(g) > 200
    assert len(calls) == len(set(calls)) < len(g)        # linear: every node at most once


# --- integers baked in ----------------------------------------------------------------------
def test_int_of_a_traced_sum_used_as_a_shape():
    def f(x, mask):
        n = int(mask.sum())
        return np.zeros(n) + x.sum()
    c = graphc.compile(f)
    x = np.arange(3.0)
    for mask in ([True, False, True], [True, True, True], [False, False, True]):
        mask = np.array(mask)
        got = c(x, mask)
        np.testing.assert_array_equal(got, np.zeros(int(mask.sum())) + 3.0)
    src = c.source(x, np.array([True, False, True]))
    assert "if int(mask.sum()) != 2:" in src


def test_range_of_a_traced_int():
    def f(x, k):
        acc = x
        for _ in range(k.sum() - 1):
            acc = acc * x
        return acc
    df = graphc.grad(f)
    for n in (1, 3, 5):
        k = np.array([n, 0])
        assert df(1.5, k) == pytest.approx(n * 1.5 ** (n - 1), rel=1e-14)
    assert len(paths_of(df).paths) == 3


def test_item_and_float_of_values_no_gradient_flows_through_are_baked_in():
    def f(x, scale):
        s = float(scale)                 # scale is not differentiated
        n = (x > 0).sum().item()         # an integer
        return x * s + n
    df = graphc.grad(f)
    x = np.array([1.0, -2.0, 3.0])
    np.testing.assert_array_equal(graphc.compile(f)(x, np.float64(2.5)), x * 2.5 + 2)
    np.testing.assert_array_equal(df(np.array(1.5), np.float64(2.5)), 2.5)
    np.testing.assert_array_equal(df(np.array(1.5), np.float64(-4.0)), -4.0)


# --- refused ----------------------------------------------------------------------------------
def test_spec_placeholders_have_no_value_to_decide_on():
    with pytest.raises(graphc.ControlFlowError) as info:
        graphc.trace(piecewise, graphc.Spec(()))
    e = info.value
    assert e.where.endswith("test_guards.py:15")
    assert "graphc.Spec" in e.message
    assert "graphc.cond" in e.hint and "graphc.while_loop" in e.hint and "np.where" in e.hint


def test_float_of_a_differentiated_value_names_the_users_line():
    def f(x):
        scale = float(x.max())
        return (x / scale).sum()
    with pytest.raises(graphc.ControlFlowError, match="gradient") as info:
        graphc.grad(f)(np.ones(3))
    assert info.value.where.endswith(f"test_guards.py:{f.__code__.co_firstlineno + 1}")
    assert "graphc.cond" in info.value.hint
    # the same function compiled (nothing differentiated) bakes the value in
    np.testing.assert_allclose(graphc.compile(f)(np.array([1.0, 2.0])), 1.5)


def test_truth_value_of_an_array_is_ambiguous():
    with pytest.raises(graphc.ControlFlowError, match="ambiguous"):
        graphc.trace(lambda x: x if x > 0 else -x, np.ones(3))


# --- higher order, nn, closures --------------------------------------------------------------
def test_grad_of_grad_through_an_if():
    def f(x):
        if x > 0:
            return x ** 3
        return -x ** 2
    d2 = graphc.grad(graphc.grad(f))
    assert d2(2.0) == pytest.approx(12.0)
    assert d2(-3.0) == pytest.approx(-2.0)
    assert d2(0.5) == pytest.approx(3.0)


def test_nn_code_paths_record_no_guards():
    def loss(w, x, y):
        return graphc.nn.mse(np.tanh(x @ w), y)
    rng = np.random.default_rng(0)
    w, x, y = rng.normal(size=(3, 2)), rng.normal(size=(5, 3)), rng.normal(size=(5, 2))
    df = graphc.grad(loss)
    assert n_guards(df.graph(w, x, y)) == 0
    assert not isinstance(paths_of(df), Paths)
    assert "GuardFailed" not in df.source(w, x, y)


def test_a_closed_over_array_decides():
    w = np.array(2.0)

    def f(x):
        if w > 1.0:
            return x * w
        return x - w
    c = graphc.compile(f)
    assert c(3.0) == 6.0
    w[...] = 0.5
    assert c(3.0) == 2.5
    w[...] = 4.0
    assert c(3.0) == 12.0


def test_a_guard_nothing_reads_is_kept():
    def f(x):
        if x.sum() > 100.0:
            pass
        return x * 2.0
    c = graphc.compile(f)
    np.testing.assert_array_equal(c(np.ones(2)), [2.0, 2.0])
    np.testing.assert_array_equal(c(np.full(2, 60.0)), [120.0, 120.0])
    assert n_guards(c.graph(np.ones(2))) == 1
    assert len(paths_of(c).paths) == 2


# --- limits and hints ------------------------------------------------------------------------
def halvings(x):
    while x > 1.0:
        x = x / 2.0
    return x


def test_path_limit_warns_once_and_stays_correct():
    f = counted(halvings)
    c = graphc.compile(f)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for k in range(MAX_PATHS + 4):
            x = 2.0 ** k + 0.5
            assert c(x) == pytest.approx(x / 2.0 ** (k + 1) if x > 1 else x)
    mine = [w for w in caught if issubclass(w.category, GraphcWarning)]
    assert len(mine) == 1
    text = str(mine[0].message)
    assert "x > 1.0" in text and "graphc.while_loop" in text
    assert mine[0].filename.endswith("test_guards.py")
    assert len(paths_of(c).paths) == MAX_PATHS
    calls = f.calls
    c(2.0 ** (MAX_PATHS + 2) + 0.5)          # uncached: traced again, still right
    assert f.calls == calls + 1


def test_an_unrolled_python_loop_warns_once_per_trace():
    def f(x):
        for _ in range(2500):
            x = x * 1.0001
        return x
    with pytest.warns(GraphcWarning, match="graphc.scan") as record:
        graphc.trace(f, np.ones(2))
    assert len([w for w in record if issubclass(w.category, GraphcWarning)]) == 1


# --- export -------------------------------------------------------------------------------
def test_exported_module_holds_every_traced_path(tmp_path):
    df = graphc.grad(piecewise)
    df(2.0)
    df(-3.0)
    path = graphc.export(df, 2.0, path=tmp_path / "pw.py")
    spec = importlib.util.spec_from_file_location("pw", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    assert mod.piecewise_grad(2.0) == 4.0
    assert mod.piecewise_grad(-3.0) == -1.0
    assert len(mod._PATHS) == 2

    # a module exported after one path raises a ValueError naming the condition
    df1 = graphc.grad(piecewise)
    path = graphc.export(df1, 2.0, path=tmp_path / "pw1.py")
    spec = importlib.util.spec_from_file_location("pw1", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    assert mod.piecewise_grad(1.0) == 2.0
    with pytest.raises(ValueError, match=r"test_guards.py:15: x > 0 is False"):
        mod.piecewise_grad(-1.0)


def test_exported_dispatcher_raises_for_a_path_it_does_not_hold(tmp_path):
    def f(x):
        if x > 0:
            if x > 10:
                return x * 3.0
            return x * 2.0
        return -x
    c = graphc.compile(f)
    c(1.0)
    c(-1.0)
    path = graphc.export(c, 1.0, path=tmp_path / "nested.py")
    spec = importlib.util.spec_from_file_location("nested", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    assert (mod.f(1.0), mod.f(-2.0)) == (2.0, 2.0)
    with pytest.raises(ValueError, match=r"x > 10 is True") as info:
        mod.f(20.0)
    assert info.value.where.startswith("test_guards.py:")
    assert c(20.0) == 60.0                   # the compiled function traces it


# --- drawing and graphc.check -------------------------------------------------------------
def test_drawing_shows_a_guard_as_a_diamond_with_its_condition_and_line():
    dot = graphc.grad(piecewise).graph(2.0).to_dot().source
    line = next(ln for ln in dot.splitlines() if "shape=diamond" in ln)
    assert "x › 0 is True" in line and "test_guards.py:15" in line


def test_check_states_it_checked_the_path_taken():
    def f(x):
        if x > 0:
            return x ** 2
        return -np.sin(x)
    r = graphc.check(f, 2.0)
    assert r.ok and r.rows[0].status == "proved" and str(r.rows[0].derivative) == "2*x"
    assert [text for text, _ in r.guards] == ["x > 0 is True"]
    assert "derivative of the path these arguments take" in str(r)
    r = graphc.check(f, -1.0)
    assert r.ok and str(r.rows[0].derivative) == "-cos(x)"
    assert [text for text, _ in r.guards] == ["x > 0 is False"]
    assert not graphc.check(lambda x: x ** 2, 2.0).guards


def test_graph_of_arguments_is_the_graph_of_their_path():
    c = graphc.compile(piecewise)
    assert [c.graph(x)[n].params["expected"] for x in (2.0, -1.0, 3.0)
            for n in c.graph(x) if c.graph(x)[n].op == "guard"] == [True, False, True]


def test_a_decision_on_a_constant_records_no_guard():
    def f(x):
        k = np.float64(2.0) * np.ones(())      # no input in it: a constant
        if (x * 0 + k).shape == () and k > 1:
            return x * k
        return x
    g = graphc.trace(f, 1.0)
    assert n_guards(g) == 0
    assert graphc.compile(f)(3.0) == 6.0


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_check_finite_with_guards_names_the_line_of_the_path_taken():
    def f(x):
        if x > 0:
            return np.log(x)
        return np.log(-x)
    c = graphc.compile(f, check_finite=True)
    assert c(np.e) == pytest.approx(1.0)
    with pytest.raises(graphc.NonFiniteError) as info:
        c(0.0)                                # the second path: log(-0.0) = -inf
    assert info.value.where.endswith(f"test_guards.py:{f.__code__.co_firstlineno + 3}")


def test_threads_share_the_paths_and_each_path_is_traced_once():
    import threading
    f = counted(piecewise)
    df = graphc.grad(f)
    errors = []

    def work(sign):
        try:
            for k in range(50):
                x = sign * (1.0 + k)
                assert df(x) == (2 * x if x > 0 else -1.0)
        except Exception as e:       # pragma: no cover (reported below)
            errors.append(e)
    threads = [threading.Thread(target=work, args=(s,)) for s in (1, -1, 1, -1)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert f.calls == 2 and len(paths_of(df).paths) == 2


def test_a_closed_over_array_that_changes_shape_retraces_the_guarded_signature():
    w = np.ones(2)

    def f(x):
        if x > 0:
            return x * w.sum()
        return x
    c = graphc.compile(f)
    assert c(2.0) == 4.0
    w = np.ones(5)          # rebinds the cell: another shape
    assert c(2.0) == 10.0
    assert c(-2.0) == -2.0


def test_user_text_in_a_guard_is_never_code():
    src = ("import numpy as np\n"
           "def f(x):\n"
           "    if x > 0:\n"
           "        return x * 2.0\n"
           "    return x\n")
    ns = {}
    exec(compile(src, "it's \"odd\")\nimport os #.py", "exec"), ns)
    c = graphc.compile(ns["f"])
    assert c(1.0) == 2.0 and c(-1.0) == -1.0
    text = c.source(1.0)
    compile(text, "check.py", "exec")              # still valid Python
    assert "\nimport os" not in text
    mod = {}
    exec(compile(graphc.compile(ns["f"]).source(1.0), "gen.py", "exec"), mod)
    with pytest.raises(ValueError) as info:
        mod["f"](-1.0)
    assert info.value.where.endswith(":3") and "odd" in info.value.where


def test_a_compiled_function_with_an_if_inside_a_grad():
    inner = graphc.compile(piecewise)
    outer = graphc.grad(lambda x: inner(x) * 2.0)
    assert outer(2.0) == 8.0 and outer(-3.0) == -2.0
    assert inner(2.0) == 4.0 and inner(-3.0) == 3.0


def test_an_infinite_value_baked_in():
    def f(x, s):
        return x * 2.0 if float(s) == np.inf else x
    c = graphc.compile(f)
    assert c(1.5, np.float64(np.inf)) == 3.0
    assert c(1.5, np.float64(2.0)) == 1.5
    assert "float(s) != np.inf" in c.source(1.5, np.float64(np.inf))
    from graphc.interpret import evaluate
    g = c.graph(1.5, np.float64(np.inf))
    assert evaluate(g, [1.5, np.float64(np.inf)])[g.outputs[0]] == 3.0
