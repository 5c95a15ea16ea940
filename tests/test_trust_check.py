"""Issue 12, "Trust": static arguments asked for a gradient, and graphc.check's verdicts.

API.md section 2: every differentiated argument must be floating (a Python int, bool, str or
None named in argnums is a GradError, never a result), and check never reports success for
something it did not verify; its tolerances follow the dtype.
"""
import os
import time

import numpy as np
import pytest

import graphc
from graphc.cli import main

HERE = os.path.basename(__file__)


def _scaled(x, n):
    return np.sum(x) * n


def _product(a, b):
    return a * b


# --- grad of a static argument --------------------------------------------------------------
@pytest.mark.parametrize("transform", [graphc.grad, graphc.value_and_grad])
@pytest.mark.parametrize("value, fix", [(3, "pass 3.0"), (True, "pass 1.0"),
                                        ("s", "pass a float"), (None, "pass a float")])
def test_static_argument_asked_for_a_gradient_is_a_grad_error(transform, value, fix):
    g = transform(_scaled, argnums=1)
    for call in (g, g.source, g.graph):
        with pytest.raises(graphc.GradError) as info:
            call(np.ones(3), value)          # the line the error must name
        err = info.value
        assert isinstance(err, TypeError)
        assert err.where is not None and os.path.basename(err.where).startswith(HERE + ":")
        assert "argument 1 (n)" in str(err) and fix in err.hint


def test_two_python_ints_do_not_come_back_as_their_own_gradient():
    # Was (3, 1), and .source() was "return 3".
    g = graphc.grad(_product, argnums=(0, 1))
    with pytest.raises(graphc.GradError, match="Python int 3") as info:
        g(3, 1)
    assert "pass 3.0" in info.value.hint
    with pytest.raises(graphc.GradError, match="Python int 3"):
        g.source(3, 1)
    assert g(3.0, 1.0) == (1.0, 3.0)


def test_a_python_int_inside_a_differentiated_pytree_is_a_grad_error():
    def f(p):
        return p["w"] * p["n"]
    with pytest.raises(graphc.GradError, match=r"argument 0 \(p\['n'\]\)") as info:
        graphc.grad(f)({"w": 2.0, "n": 3})
    assert "pass 3.0" in info.value.hint
    # None inside a pytree is an empty subtree (as in JAX), and an int outside argnums is static.
    assert graphc.grad(lambda p, n: p["w"] * n)({"w": 2.0, "b": None}, 3) == {"w": 3.0, "b": None}


def test_integer_and_boolean_arrays_asked_for_a_gradient_name_the_call():
    for x in (np.arange(3), np.array([True, False]), np.int64(2)):
        with pytest.raises(graphc.GradError, match="integer or boolean") as info:
            graphc.value_and_grad(lambda x: np.sum(x * 1.0))(x)
        assert os.path.basename(info.value.where).startswith(HERE + ":")


def test_check_of_an_int_argument_is_a_grad_error():
    with pytest.raises(graphc.GradError, match="pass 3.0"):
        graphc.check(lambda x: x * 1.0, 3)


# --- graphc.check: no false verdicts ----------------------------------------------------------
def test_check_with_nothing_to_check_is_not_ok():
    def f(p, x):
        return np.sum(x ** 2)
    report = graphc.check(f, {}, np.ones(3))        # argument 0 holds no floats: zero rows
    assert report.rows == [] and not report.ok and not bool(report)
    assert "NOTHING CHECKED" in str(report) and any("nothing was checked" in n for n in report.notes)


def test_check_of_an_empty_array_is_not_ok():
    """A row of 0/0 elements verified nothing: it read "proved" and OK."""
    report = graphc.check(lambda a: np.sum(a * 2.0), np.ones(0))
    assert [r.checked for r in report.rows] == [0] and not report.ok
    assert "NOTHING CHECKED" in str(report) and "not verified" in report.rows[0].note
    both = graphc.check(lambda a, b: np.sum(a * 2.0) + np.sum(b ** 2), np.ones(0), np.ones(3),
                        argnums=(0, 1))
    assert not both.ok and str(both).startswith("graphc.check(<lambda>): NOT ALL CHECKED")
    assert both.rows[1].checked == 3 and both.rows[1].status == "proved"


def test_check_counts_negative_argnums_from_the_end():
    # argnums=-1 used to match no input at all, and zero rows were reported OK.
    report = graphc.check(lambda a, b: np.sum(a * b ** 2), np.ones(2), np.array([1.0, 2.0]),
                          argnums=-1)
    assert report.ok and [r.input for r in report.rows] == ["b"]


def test_check_rows_follow_argnums_order():
    def f(a, b):
        return np.sum(a) * b[0] ** 2
    report = graphc.check(f, np.ones(2), np.array([3.0, 1.0, 2.0]), argnums=(1, 0))
    assert report.ok, str(report)
    assert [(r.input, r.elements) for r in report.rows] == [("b", 3), ("a", 2)]


@pytest.mark.parametrize("fn, x, what", [(lambda x: np.sqrt(x - 1.0), 0.5, "NaN"),
                                         (lambda x: np.sqrt(x), 0.0, "infinite"),
                                         (lambda x: np.sum(np.sqrt(x)), np.array([0.0, 1.0]),
                                          "infinite")])
def test_check_never_proves_a_nan_or_infinite_gradient(fn, x, what):
    with np.errstate(all="ignore"):
        report = graphc.check(fn, x)
    assert not report.ok
    row = report.rows[0]
    assert row.status == "mismatch" and not np.isfinite(row.max_error)
    assert what in row.note and what in str(report)


def test_check_of_a_float16_overflow_is_not_ok():
    # exp(12) overflows float16: the float64 derivative is fine, the function's gradient is inf.
    with np.errstate(all="ignore"):
        report = graphc.check(lambda x: np.sum(np.exp(x)), np.array([1.0, 12.0], np.float16))
    assert not report.ok and "infinite" in report.rows[0].note


def test_check_float16_and_float32_gradients_are_not_mismatches(rng):
    f = lambda x: np.sum(np.tanh(x) ** 2)          # noqa: E731
    for dtype in (np.float16, np.float32):
        report = graphc.check(f, np.linspace(-1, 1, 5).astype(dtype))
        assert report.ok, str(report)
        assert report.rows[0].status == "proved"
        assert any("float64" in n for n in report.notes)
        assert f"its {np.dtype(dtype).name} gradient differs" in report.rows[0].note


def _mlp(params, x, y):
    h = np.tanh(x @ params["W1"] + params["b1"])
    out = h @ params["W2"] + params["b2"]
    return np.mean((out - y) ** 2)


def _mlp_args(rng, dtype=np.float64, n=64, d=20, hidden=32):
    params = {"W1": rng.normal(size=(d, hidden)), "b1": np.zeros(hidden),
              "W2": rng.normal(size=(hidden, 1)), "b2": np.zeros(1)}
    params = {k: v.astype(dtype) for k, v in params.items()}
    return params, rng.normal(size=(n, d)).astype(dtype), rng.normal(size=(n, 1)).astype(dtype)


def test_check_float32_mlp_is_ok(rng):
    # Was a "mismatch" of 4.6e-2: finite differences taken in float32.
    report = graphc.check(_mlp, *_mlp_args(rng, np.float32))
    assert report.ok, str(report)
    assert [r.status for r in report.rows] == ["numeric"] * 4
    assert max(r.max_error for r in report.rows) < 1e-5


def test_check_float32_still_catches_a_wrong_gradient(monkeypatch):
    # A wrong VJP (sin's with the wrong sign) is a mismatch in float32 and float16 too.
    import dataclasses
    import graphc.numpy_api as napi
    from graphc.primitive import REGISTRY
    sin = REGISTRY["sin"]
    broken = dataclasses.replace(sin, vjp=lambda ct, x, *, out: (-(ct * graphc.ops.elementwise.cos(x)),))
    monkeypatch.setitem(REGISTRY, "sin", broken)
    monkeypatch.setattr(graphc.ops.elementwise, "sin", broken)
    monkeypatch.setitem(napi.UFUNCS, np.sin, broken)
    for dtype in (np.float32, np.float16):
        report = graphc.check(lambda x: np.sum(np.sin(x) * x), np.array([0.7, 0.3], dtype))
        assert not report.ok and report.rows[0].status == "mismatch", str(report)
    # ... and by finite differences (a graph too large for SymPy), float64 and float32
    x = np.random.default_rng(0).uniform(-1, 1, size=5000)
    for dtype in (np.float64, np.float32):
        report = graphc.check(lambda x: np.sum(np.sin(x) * x), x.astype(dtype))
        assert report.rows[0].method == "directional finite differences"
        assert not report.ok and report.rows[0].status == "mismatch", str(report)


_LAYER = """import numpy as np

def layer(x, W, scale):
    h = np.tanh(x @ W) * scale
    return h.sum()
"""


def test_readme_float32_layer_checks_ok_from_the_command_line(tmp_path, capsys):
    # README's layer.py: a float32 layer scaled by a Python float (float64 input, float32 math).
    (tmp_path / "layer.py").write_text(_LAYER)
    argv = ["check", f"{tmp_path / 'layer.py'}:layer", "--arg", "x=f32[64,10]",
            "--arg", "W=f32[10,3]", "--arg", "scale=0.5", "--argnums", "0,1,2"]
    assert main(argv) == 0, capsys.readouterr().out
    text = capsys.readouterr().out
    assert text.startswith("graphc.check(layer): OK") and "mismatch" not in text


def test_check_handles_a_list_of_weight_tuples(rng):
    # _replace_leaf assigned into the tuple: TypeError.
    def loss(layers, x):
        for W, b in layers:
            x = np.tanh(x @ W + b)
        return np.sum(x)
    layers = [(rng.normal(size=(4, 5)), np.zeros(5)), (rng.normal(size=(5, 2)), np.zeros(2))]
    report = graphc.check(loss, layers, rng.normal(size=(3, 4)))
    assert report.ok, str(report)
    assert [r.input for r in report.rows] == ["layers[0][0]", "layers[0][1]",
                                              "layers[1][0]", "layers[1][1]"]


def _deep(x):
    for _ in range(150):
        x = np.sin(x)
    return x


def test_check_of_a_deep_graph_falls_back_to_finite_differences(monkeypatch):
    report = graphc.check(_deep, 0.5)                  # decided up front: too deep for SymPy
    assert report.ok and report.rows[0].status == "numeric"
    # ... and a RecursionError inside SymPy (150 nested sin, given the time) is a fallback to
    # finite differences, not a crash.
    def too_deep(*args, **kwargs):
        raise RecursionError("maximum recursion depth exceeded")
    monkeypatch.setattr(graphc.symbolic, "evaluate", too_deep)
    report = graphc.check(lambda x: np.sin(np.sin(x)), 0.5)
    assert report.ok and report.rows[0].status == "numeric"
    assert any("nested too deeply" in n for n in report.notes)


def test_check_decides_numeric_up_front_for_a_real_model(rng):
    # Was 10 s of SymPy (the whole budget) before the finite differences; now well under 1 s.
    args = _mlp_args(rng)
    start = time.perf_counter()
    report = graphc.check(_mlp, *args)
    elapsed = time.perf_counter() - start
    assert report.ok and [r.status for r in report.rows] == ["numeric"] * 4
    assert any("too much for SymPy" in n for n in report.notes)
    assert elapsed < 5.0, elapsed
    # small graphs are still proved symbolically
    assert [r.status for r in graphc.check(lambda a, b: a / b + np.exp(2 * b), 1.5, 0.5,
                                           argnums=(0, 1)).rows] == ["proved", "proved"]


# --- graphc check (CLI): argument 0 by default, as graphc.grad --------------------------------
_LOSS = """import numpy as np
import graphc

_rng = np.random.default_rng(0)


@graphc.example({"W": _rng.normal(size=(3, 2)), "b": np.zeros(2)}, _rng.normal(size=(5, 3)),
                _rng.normal(size=(5, 2)))
def loss(params, x, y):
    return np.mean((np.tanh(x @ params["W"] + params["b"]) - y) ** 2)
"""


def test_cli_check_defaults_to_the_parameters(tmp_path, capsys):
    (tmp_path / "model.py").write_text(_LOSS)
    assert main(["check", f"{tmp_path / 'model.py'}:loss"]) == 0
    text = capsys.readouterr().out
    inputs = [line.split()[0] for line in text.splitlines()[2:] if line.startswith("  ")
              and not line.lstrip().startswith(("note", "d"))]
    assert inputs == ["params['W']", "params['b']"], text
    assert main(["check", f"{tmp_path / 'model.py'}:loss", "--argnums", "0,1,2"]) == 0
    assert "  x " in capsys.readouterr().out
