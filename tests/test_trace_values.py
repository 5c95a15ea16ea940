"""Values and adjoints in traces: graphc.trace(values=True), Compiled.trace, the lecture's table."""
import importlib.util
import pathlib

import numpy as np
import pytest

import graphc
from graphc.trace_table import summarize, trace_rows

from _fd import fd_grad
from functions import lecture_grad_closed_form, mlp_loss, mlp_params
from test_codegen import check_golden

ROOT = pathlib.Path(__file__).resolve().parent.parent


def _lecture_f():
    spec = importlib.util.spec_from_file_location("_lecture_example",
                                                  ROOT / "examples" / "autodiff_trace.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.f


W = (1.5, 0.5)


def _forward(w1, w2, dz1=0.0, dz4=0.0, dz5=0.0):
    """The lecture's forward pass with z1 (z4, z5) nudged: partial derivatives by FD."""
    z1 = w1 / w2 + dz1
    z2 = np.sin(2 * np.pi * z1)
    z3 = np.exp(2 * w2)
    z4 = 3 * z1 - z3 + dz4
    z5 = z2 + z4 + dz5
    return dict(z1=z1, z2=z2, z3=z3, z4=z4, z5=z5, z6=z4 * z5)


def test_lecture_table_golden():
    table = graphc.grad(_lecture_f(), argnums=(0, 1)).trace(*W, values=True)
    check_golden("lecture_table.txt", str(table) + "\n")


def test_lecture_forward_values_are_the_functions():
    table = graphc.trace(_lecture_f(), *W, values=True)
    for name, want in _forward(*W).items():
        assert float(table.value(name)) == want, name
    text = str(table)
    assert "z6 = z4 * z5" in text and "= 39.459983186667834" in text


def test_lecture_adjoints_one_per_named_value():
    f = _lecture_f()
    table = graphc.grad(f, argnums=(0, 1)).trace(*W, values=True)
    names = [r.name for r in table.rows() if r.section == "backward"]
    for want in ("d_z6", "d_z5", "d_z4", "d_z3", "d_z2", "d_z1", "d_w1", "d_w2"):
        assert want in names
    assert not any(n.startswith(("mul_", "div", "sub", "neg")) for n in names), names
    fw = _forward(*W)
    # the lecture's sums over children, by hand
    assert float(table.value("d_z6")) == 1.0
    assert float(table.value("d_z5")) == fw["z4"]
    assert float(table.value("d_z4")) == fw["z5"] + fw["z4"]
    assert float(table.value("d_z3")) == -(fw["z5"] + fw["z4"])
    assert float(table.value("d_z2")) == fw["z4"]
    # each adjoint is the derivative of z6 with respect to that value: finite differences
    eps = 1e-6
    for name, key in (("d_z1", "dz1"), ("d_z4", "dz4"), ("d_z5", "dz5")):
        fd = (_forward(*W, **{key: eps})["z6"] - _forward(*W, **{key: -eps})["z6"]) / (2 * eps)
        assert abs(float(table.value(name)) - fd) < 1e-6 * max(1.0, abs(fd)), name
    want = lecture_grad_closed_form(*W)
    np.testing.assert_allclose([table.value("d_w1"), table.value("d_w2")], want, rtol=1e-12)
    # the rows as data: forward rows carry their adjoint
    z1 = next(r for r in table.rows() if r.name == "z1")
    assert (z1.adjoint, z1.value, z1.source) == ("d_z1", "3.0", "z1 = w1 / w2")
    assert float(z1.adjoint_value) == float(table.value("d_z1"))
    assert z1.where.endswith("autodiff_trace.py:16") and z1.code == "z1 = w1 / w2"


def test_compiled_code_still_folds():
    # the printed trace keeps d_z2; the generated code shares it with d_z5
    df = graphc.grad(_lecture_f(), argnums=(0, 1))
    assert "d_z2" in str(df.trace(*W)) and "d_z2" not in df.source(*W)
    assert df.trace(*W).values is None
    np.testing.assert_allclose(df(*W), lecture_grad_closed_form(*W), rtol=1e-12)


def test_value_and_grad_trace_of_an_mlp_matches_grad():
    rng = np.random.default_rng(0)
    p, x, y = mlp_params(rng), rng.normal(size=(4, 5)), np.array([0, 1, 1, 0])
    table = graphc.value_and_grad(mlp_loss).trace(p, x, y, values=True)
    loss, grads = graphc.value_and_grad(mlp_loss)(p, x, y)
    assert float(table.value("loss")) == pytest.approx(float(loss), rel=1e-14)
    for k in p:
        np.testing.assert_allclose(table.value(f"d_{k}"), grads[k], rtol=1e-12, atol=1e-15)
    fd = fd_grad(lambda q: mlp_loss(q, x, y), p)
    np.testing.assert_allclose(table.value("d_W1"), fd["W1"], rtol=1e-5, atol=1e-8)
    h = next(r for r in table.rows() if r.name == "h")
    assert h.type == "f64[4,4]" and " min " in h.value and " max " in h.value
    assert h.adjoint == "d_h"


def test_trace_values_of_a_compiled_function_and_guards():
    def g(x):
        if x.sum() > 0:
            return np.sum(x ** 2)
        return -x.sum()
    table = graphc.trace(graphc.grad(g), np.array([1.0, 2.0]), values=True)
    np.testing.assert_array_equal(table.value("d_x"), [2.0, 4.0])
    assert "guard (sum_ > 0) is True" in str(table)


def test_specs_have_no_values():
    with pytest.raises(graphc.OptionError, match="Spec"):
        graphc.trace(lambda x: x * 2.0, graphc.Spec((3,)), values=True)
    with pytest.raises(KeyError, match="values=True"):
        graphc.grad(lambda x: x * 2.0).trace(1.0).value("x")
    with pytest.raises(KeyError, match="no value named"):
        graphc.trace(lambda x: x * 2.0, 1.0, values=True).value("nope")


def test_closed_over_array_has_its_value():
    w = np.array([1.0, 2.0, 3.0])

    def h(x):
        return np.sum(w * x)
    table = graphc.grad(h).trace(np.ones(3), values=True)
    np.testing.assert_array_equal(table.value("d_x"), w)


def test_summaries():
    assert summarize(np.float64(0.1) + np.float64(0.2)) == "0.30000000000000004"
    assert summarize(np.float32(0.1)) == "0.1"
    assert summarize(np.array(True)) == "True"
    assert summarize(np.array([[1.0, 2.0], [3.0, 4.0]])) == "[1, 2, 3, 4]"
    assert summarize(np.zeros(0)) == "[]"
    assert summarize(np.arange(100)) == "[0, 1, 2, ...] min 0 max 99"
    assert summarize(np.array([1.0, np.nan, 3.0, 4.0, 5.0, 6.0, -2.0])) == \
        "[1, nan, 3, ...] 1 not finite min -2 max 6"
    assert summarize(np.ones(10, bool)) == "[True, True, True, ...] 10 of 10 true"


def test_plain_trace_unchanged_without_values():
    f = _lecture_f()
    g = graphc.trace(f, *W)
    assert type(g) is graphc.Graph and "=" not in str(g).splitlines()[1].split("#")[1]
    rows = trace_rows(g)
    assert [r.name for r in rows][:3] == ["w1", "w2", "z1"] and rows[2].value == ""


def test_rows_html_escapes():
    table = graphc.trace(lambda x: x * 2.0, 1.0, values=True)
    html = table._repr_html_()
    assert html.startswith("<table") and "<b>mul</b>" in html and "2.0" in html


def test_other_transforms_trace_with_values():
    def f(x):
        return np.sum(np.sin(x) * x)
    x = np.arange(3.0)
    jt = graphc.jvp(f).trace((x,), (np.ones(3),), values=True)
    np.testing.assert_allclose(jt.value("dot_sum"), np.sum(np.cos(x) * x + np.sin(x)), rtol=1e-14)
    ht = graphc.hessian(f).trace(x, values=True)
    np.testing.assert_allclose(ht.values[ht.outputs[0]], graphc.hessian(f)(x), rtol=1e-14)
    vt = graphc.vmap(graphc.grad(f)).trace(np.ones((2, 3)), values=True)
    np.testing.assert_allclose(vt.value("d_x"), graphc.vmap(graphc.grad(f))(np.ones((2, 3))))


def test_loops_print_their_own_lines_and_values_match():
    from graphc.target import example_inputs, load_function
    fn = load_function(f"{ROOT / 'examples' / 'rnn_scan.py'}:loss")
    args, kwargs = example_inputs(fn, {})
    table = graphc.grad(fn).trace(*args, values=True, **kwargs)
    text = str(table)
    assert "for t in range(10):" in text and "(9 values)" not in text
    assert all(ln.count("#") <= 1 for ln in text.splitlines()), text
    want = graphc.grad(fn)(*args, **kwargs)
    got = {r.name: table.values[r.node] for r in table.rows() if r.name.startswith("d_W")}
    for k in ("Wx", "Wh", "Wo"):
        np.testing.assert_allclose(got[f"d_{k}"], want[k], rtol=1e-12, atol=1e-14)
