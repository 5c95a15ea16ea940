"""SymPy proofs of every gradient rule, and graphc.check.

For each registered primitive with a VJP, the rule's backward graph (evaluated
on SymPy symbols) must equal ``sympy.diff`` of the primitive's own SymPy
semantics, element by element, at a tiny shape.  Equality is decided by
``simplify(a - b) == 0`` or, where SymPy cannot decide, at random points with
50-digit precision; each proof records which.
"""
import numpy as np
import pytest
import sympy as sp

import graphc
from graphc.primitive import REGISTRY
from graphc.symbolic import equal, evaluate, symbols_like, to_sympy
from functions import lecture, lecture_grad_closed_form
from graphc.ops._samples import Sample
from test_primitives import CASES, rnd

MAX_ELEMENTS = 40


def _size(case):
    return sum(np.size(a) for a in case.args if isinstance(a, (np.ndarray, np.generic)))


def _proof_case(name):
    """The sample a record marks ``proof=True``, else its smallest with a float input."""
    marked = [c for c in CASES[name] if c.proof]
    if marked:
        return marked[0]
    cases = [c for c in CASES[name] if c.grad and any(
        np.asarray(a).dtype.kind == "f" for a in c.args if isinstance(a, (np.ndarray, np.generic)))]
    return min(cases, key=_size) if cases else None


DIFFERENTIABLE = sorted(n for n, p in REGISTRY.items() if p.differentiable)


def test_every_primitive_has_sympy_semantics():
    missing = [n for n, p in REGISTRY.items() if p.sympy is None]
    assert missing == [], f"primitives without SymPy semantics: {missing}"


def rule_proof(name, case, prim=None):
    """Return a list of verdicts, one per input element."""
    prim = prim or REGISTRY[name]
    args = case.args
    float_pos = [i for i, a in enumerate(args)
                 if isinstance(a, (np.ndarray, np.generic)) and np.asarray(a).dtype.kind == "f"]

    def f(*xs):
        *xs, ct = xs
        return np.sum(prim(*xs, **case.params) * ct)
    out = np.asarray(REGISTRY[name](*args, **case.params))
    ct0 = np.ones(out.shape)
    graph = graphc.value_and_grad(f, argnums=tuple(float_pos)).graph(*args, ct0)
    env, syms = {}, {}
    leaf_args = [a for a in args if not isinstance(a, (int, bool, str)) or isinstance(a, np.generic)]
    arg_index = [i for i, a in enumerate(args) if not isinstance(a, (int, bool, str)) or isinstance(a, np.generic)]
    for nid, i, a in zip(graph.inputs, arg_index + [len(args)], leaf_args + [ct0]):
        arr = np.asarray(a)
        if i in float_pos:
            positive = bool(np.all(arr > 0))
            syms[i] = symbols_like(f"x{i}", arr.shape, positive=positive)
            env[nid] = syms[i]
        elif i == len(args):
            env[nid] = symbols_like("c", arr.shape)
        else:
            env[nid] = to_sympy(arr)
    vals = evaluate(graph, env)
    L = vals[graph.outputs[0]]
    verdicts = []
    for k, i in enumerate(float_pos):
        grad = np.asarray(vals[graph.outputs[1 + k]], dtype=object)
        s = np.asarray(syms[i], dtype=object)
        for idx in np.ndindex(*s.shape) if s.shape else [()]:
            sym = s[idx]
            got = grad[idx] if grad.shape else grad.item()
            verdicts.append(equal(sp.diff(L, sym), got, [], positive=False))
    return verdicts


@pytest.mark.parametrize("name", DIFFERENTIABLE)
def test_rule_proof(name):
    if name == "stop_gradient":   # its derivative is 0 by definition, not by its value
        g = graphc.grad(lambda x: np.sum(graphc.ops.shape.stop_gradient(x) * x))(np.array([2.0, 3.0]))
        np.testing.assert_array_equal(g, [2.0, 3.0])
        return
    if name == "custom_vjp_call":   # its derivative is the user's bwd, not its value's
        pytest.skip("a user's rule: graphc.check compares it with the primal (test_custom.py)")
    case = _proof_case(name)
    assert case is not None, f"no float64 gradient case for {name}"
    assert _size(case) <= MAX_ELEMENTS or case.proof, (name, _size(case))
    verdicts = rule_proof(name, case)
    assert verdicts, name
    bad = [v for v in verdicts if not v.equal]
    assert not bad, f"{name}: {len(bad)} of {len(verdicts)} elements differ ({bad[0]})"


def test_a_broken_rule_is_caught(monkeypatch):
    """A wrong sign in a VJP is reported by the rule proof and by graphc.check."""
    import dataclasses
    sin = REGISTRY["sin"]
    broken = dataclasses.replace(sin, vjp=lambda ct, x, *, out: (-(ct * graphc.ops.elementwise.cos(x)),))
    monkeypatch.setitem(REGISTRY, "sin", broken)
    monkeypatch.setattr(graphc.ops.elementwise, "sin", broken)
    import graphc.numpy_api as napi
    monkeypatch.setitem(napi.UFUNCS, np.sin, broken)
    case = Sample((rnd(2),), {}, None)
    verdicts = rule_proof("sin", case, prim=broken)
    assert not any(v.equal for v in verdicts)
    report = graphc.check(lambda x: np.sin(x) * x, 0.7)
    assert not report.ok and report.rows[0].status == "mismatch"


# --- graphc.check ---------------------------------------------------------------------------
def test_check_proves_the_lecture_example():
    report = graphc.check(lecture, 1.5, 0.5, argnums=(0, 1))
    assert report.ok and bool(report)
    assert [r.input for r in report.rows] == ["w1", "w2"]
    assert [r.status for r in report.rows] == ["proved", "proved"]
    w1, w2 = sp.symbols("w1 w2", real=True)
    for row, closed in zip(report.rows, lecture_grad_closed_form(1.5, 0.5)):
        assert row.derivative is not None
        value = float(row.derivative.subs({w1: 1.5, w2: 0.5}))
        assert value == pytest.approx(closed, rel=1e-12)
        assert row.max_error < 1e-12
    text = str(report)
    assert "w1" in text and "w2" in text and "proved" in text
    assert "\\frac" in report._repr_markdown_() or "$$" in report._repr_markdown_()
    assert "pi" in report.rows[0].latex()


def test_check_on_arrays_and_sub_blocks():
    def f(x, w):
        return np.sum(np.tanh(x @ w))
    rng = np.random.default_rng(0)
    report = graphc.check(f, rng.normal(size=(2, 3)), rng.normal(size=(3, 6)), argnums=(0, 1))
    assert report.ok
    rows = {r.input: r for r in report.rows}
    assert rows["x"].checked == 6 and rows["w"].checked == 12 and rows["w"].elements == 18
    assert "sub-block" in rows["w"].note


def test_check_falls_back_to_numeric_for_large_graphs():
    def f(x):
        return np.sum(np.tanh(x) ** 2)
    report = graphc.check(f, np.random.default_rng(0).normal(size=(300, 300)))
    assert report.ok and report.rows[0].status == "numeric"
    assert any("numerically" in n for n in report.notes)


def test_check_reports_kinks_with_numpy_conventions():
    def f(x):
        return np.sum(np.maximum(x, 0.0) * x) + np.sum(np.where(x > 0.5, x ** 2, -x))
    report = graphc.check(f, np.array([-1.0, 0.25, 2.0]))
    assert report.ok, str(report)


def test_mean_over_three_is_proved():
    # The backward pass scales by the float64 1/3; the forward divides by the integer 3.
    report = graphc.check(lambda x: np.mean(x ** 2), np.array([0.5, 1.5, 2.5]))
    assert report.ok and report.rows[0].status == "proved"


def test_folded_float_constants_compare_at_float64_rounding():
    # 0.1 / 7 is folded in float64: a rational with a huge denominator, not 1/70.
    report = graphc.check(lambda x: np.sum(x ** 2) / 7 * 0.1, np.array([0.5, 1.5, 2.5]))
    assert report.ok, str(report)


def test_wrong_rule_still_caught_with_float_constants():
    import sympy as sp
    x = sp.Symbol("x")
    v = equal(x * sp.Rational(3333333333333333, 10 ** 16), -x / 3, [x], simplify_ops=0)
    assert not v.equal


def test_symbol_cancelling_in_the_difference_is_still_substituted():
    import sympy as sp
    x, z = sp.symbols("x z")
    a = z + x
    b = z + x * (1 + sp.Rational(1, 10 ** 40))
    v = equal(a, b, [x, z], simplify_ops=0)     # numeric path; z cancels in a - b
    assert v.method == "numeric" and v.equal
