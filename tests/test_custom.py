"""graphc.custom_vjp: the user's bwd is the backward pass; graphc.check catches a wrong one."""
import numpy as np
import pytest

import graphc
from graphc.errors import GradError, UnsupportedError


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


@graphc.custom_vjp
def log1pexp(x):
    return np.log1p(np.exp(x))


def _fwd(x):
    return log1pexp(x), x


def _bwd(x, ct):
    return (ct * (1.0 / (1.0 + np.exp(-x))),)


log1pexp.defvjp(_fwd, _bwd)


def loss(x):
    return log1pexp(x).sum()


X = np.array([-3.0, -0.5, 0.0, 1.5, 4.0])


def test_outside_a_trace_it_is_plain_python():
    np.testing.assert_allclose(log1pexp(X), np.log1p(np.exp(X)))


def test_grad_uses_bwd_and_matches_sigmoid():
    np.testing.assert_allclose(graphc.grad(loss)(X), _sigmoid(X), rtol=1e-14)
    v, g = graphc.value_and_grad(loss)(X)
    np.testing.assert_allclose(v, np.log1p(np.exp(X)).sum(), rtol=1e-14)
    np.testing.assert_allclose(g, _sigmoid(X), rtol=1e-14)


def test_bwd_is_stable_where_the_primal_derivative_is_not():
    # ct * sigmoid(x) written as 1 / (1 + exp(-x)) stays finite at x = 800
    g = graphc.grad(loss)(np.array([800.0, -30.0]))
    np.testing.assert_allclose(g, [1.0, _sigmoid(-30.0)], rtol=1e-14)


def test_generated_code_shows_bwd_under_grad_of_header():
    src = graphc.grad(loss).source(X)
    assert "# grad of: return log1pexp(x).sum()" in src
    assert "np.exp(-x)" in src


def test_vjp_uses_bwd():
    out, vjp_fn = graphc.vjp(log1pexp, X)
    ct = np.arange(1.0, 6.0)
    (d,) = vjp_fn(ct)
    np.testing.assert_allclose(out, np.log1p(np.exp(X)), rtol=1e-14)
    np.testing.assert_allclose(d, ct * _sigmoid(X), rtol=1e-14)


def test_grad_of_grad_differentiates_the_traced_bwd():
    h = graphc.grad(lambda x: graphc.grad(loss)(x).sum())(X)
    s = _sigmoid(X)
    np.testing.assert_allclose(h, s * (1 - s), rtol=1e-12)


def test_vmap_of_grad():
    xs = np.stack([X, -X, 2 * X])
    np.testing.assert_allclose(graphc.vmap(graphc.grad(loss))(xs), _sigmoid(xs), rtol=1e-14)


def test_two_arguments_and_a_none_cotangent():
    @graphc.custom_vjp
    def scale(a, x):
        return a * x

    scale.defvjp(lambda a, x: (a * x, (a, x)), lambda r, ct: ((ct * r[1]).sum(), None))
    a, x = np.array(2.0), np.array([1.0, 2.0, 3.0])
    da = graphc.grad(lambda a, x: scale(a, x).sum())(a, x)
    assert float(da) == pytest.approx(6.0)
    dx = graphc.grad(lambda a, x: scale(a, x).sum(), argnums=1)(a, x)
    np.testing.assert_array_equal(dx, np.zeros(3))     # the rule says no gradient for x


def test_check_passes_a_right_rule():
    report = graphc.check(loss, X)
    assert report.ok, report


def test_check_reports_a_wrong_rule_as_mismatch():
    @graphc.custom_vjp
    def sq(x):
        return x * x

    sq.defvjp(lambda x: (x * x, x), lambda x, ct: (3.0 * x * ct,))   # wrong: 3x, not 2x
    report = graphc.check(lambda x: sq(x).sum(), np.array([-1.5, 0.5, 2.0]))
    assert not report.ok
    row = report.rows[0]
    assert row.status == "mismatch" and row.input == "x"
    assert "x" in str(report) and "mismatch" in str(report)


def test_bwd_with_the_wrong_number_of_cotangents_names_its_line():
    @graphc.custom_vjp
    def twice(x):
        return 2.0 * x

    def bad_bwd(r, ct):
        return (ct, ct)

    twice.defvjp(lambda x: (2.0 * x, None), bad_bwd)
    with pytest.raises(GradError, match="tuple of 1 cotangent") as e:
        graphc.grad(lambda x: twice(x).sum())(X)
    assert f"test_custom.py:{bad_bwd.__code__.co_firstlineno}" in str(e.value)


def test_bwd_with_a_wrong_shape_names_its_line():
    @graphc.custom_vjp
    def twice(x):
        return 2.0 * x

    def bad_bwd(r, ct):
        return (np.ones((2, 2)),)

    twice.defvjp(lambda x: (2.0 * x, None), bad_bwd)
    with pytest.raises(GradError, match=r"shape \(2, 2\)") as e:
        graphc.grad(lambda x: twice(x).sum())(X)
    assert f"test_custom.py:{bad_bwd.__code__.co_firstlineno}" in str(e.value)


def test_jvp_through_custom_vjp_is_refused():
    with pytest.raises(UnsupportedError, match="forward mode .* custom_vjp"):
        graphc.jvp(loss, (X,), (np.ones_like(X),))


def test_missing_rule_is_an_error():
    @graphc.custom_vjp
    def f(x):
        return x

    with pytest.raises(GradError, match="defvjp"):
        graphc.grad(lambda x: f(x).sum())(X)


def test_vmap_of_value_and_grad_keeps_values():
    xs = np.stack([X, -X])
    v, g = graphc.vmap(graphc.value_and_grad(loss))(xs)
    np.testing.assert_allclose(v, np.log1p(np.exp(xs)).sum(axis=1), rtol=1e-14)
    np.testing.assert_allclose(g, _sigmoid(xs), rtol=1e-14)
    np.testing.assert_allclose(graphc.vmap(log1pexp)(xs), np.log1p(np.exp(xs)), rtol=1e-14)


def test_grad_of_vmap_uses_the_rule_not_the_primal_derivative():   # was refused before
    xs = np.stack([X, -X, np.full(5, 800.0)])      # the primal's derivative is nan at 800
    np.testing.assert_allclose(graphc.grad(lambda xs: graphc.vmap(log1pexp)(xs).sum())(xs), _sigmoid(xs), rtol=1e-14)  # noqa: E501


# --- custom_jvp ------------------------------------------------------------------------------
@graphc.custom_jvp
def softplus(x):
    return np.log1p(np.exp(x))


def _softplus_rule(primals, tangents):
    (x,), (t,) = primals, tangents
    return softplus(x), t / (1.0 + np.exp(-x))


softplus.defjvp(_softplus_rule)


def test_custom_jvp_forward_mode_uses_the_rule():
    t = np.arange(1.0, 6.0)
    out, dot = graphc.jvp(softplus, (X,), (t,))
    np.testing.assert_allclose(out, np.log1p(np.exp(X)), rtol=1e-14)
    np.testing.assert_allclose(dot, t * _sigmoid(X), rtol=1e-14)
    np.testing.assert_allclose(softplus(X), np.log1p(np.exp(X)))       # plain outside a trace


def test_custom_jvp_reverse_mode_transposes_the_rule():
    f = lambda x: softplus(x).sum()       # noqa: E731
    np.testing.assert_allclose(graphc.grad(f)(X), _sigmoid(X), rtol=1e-14)
    src = graphc.grad(f).source(X)
    assert "np.exp(-x)" in src and "# grad of:" in src
    s = _sigmoid(X)
    np.testing.assert_allclose(graphc.jvp(graphc.grad(f), (X,), (np.ones(5),))[1], s * (1 - s),
                               rtol=1e-12)
    assert graphc.check(f, X).ok


def test_custom_jvp_two_arguments():
    @graphc.custom_jvp
    def mul(a, b):
        return a * b

    mul.defjvp(lambda p, t: (p[0] * p[1], t[0] * p[1] + p[0] * t[1]))
    a, b = np.array([1.0, 2.0]), np.array([3.0, -1.0])
    da, db = graphc.grad(lambda a, b: mul(a, b).sum(), argnums=(0, 1))(a, b)
    np.testing.assert_allclose(da, b)
    np.testing.assert_allclose(db, a)


def test_check_reports_a_wrong_jvp_rule_as_mismatch():
    @graphc.custom_jvp
    def cube(x):
        return x ** 3

    cube.defjvp(lambda p, t: (p[0] ** 3, 2.0 * p[0] ** 2 * t[0]))     # wrong: 3x^2
    report = graphc.check(lambda x: cube(x).sum(), np.array([0.5, -1.0, 2.0]))
    assert not report.ok and report.rows[0].status == "mismatch"


# --- checkpoint ------------------------------------------------------------------------------
_W = np.random.default_rng(0).normal(size=(4, 4))


def _block(x):
    return np.tanh(x @ _W) * 2.0


def test_checkpoint_keeps_gradients_and_recomputes():
    ck = graphc.checkpoint(_block)
    plain = lambda x: (_block(_block(x)) ** 2).sum()      # noqa: E731
    remat = lambda x: (ck(ck(x)) ** 2).sum()              # noqa: E731
    x = np.random.default_rng(1).normal(size=(3, 4))
    np.testing.assert_allclose(graphc.grad(remat)(x), graphc.grad(plain)(x), rtol=1e-14)
    np.testing.assert_allclose(ck(x), _block(x))                 # plain outside a trace
    src = graphc.grad(remat).source(x)
    back = src.split("# grad of:")[1]
    assert back.count("np.tanh(") == 2            # both blocks recomputed in the backward pass
    assert src.split("# grad of:")[0].count("np.tanh(") == 2
    c_plain, c_remat = graphc.grad(plain).graph(x).cost(), graphc.grad(remat).graph(x).cost()
    fwd_flops = c_plain.forward_flops if hasattr(c_plain, "forward_flops") else None
    assert str(c_remat) != str(c_plain)
    assert "backward 516 FLOPs" in str(c_remat) and "backward 300 FLOPs" in str(c_plain), \
        (c_plain, c_remat, fwd_flops)
    # second order through the recomputation equals second order without it
    v = np.ones_like(x)
    np.testing.assert_allclose(graphc.hvp(remat, (x,), (v,)), graphc.hvp(plain, (x,), (v,)),
                               rtol=1e-12)


# --- golden files ----------------------------------------------------------------------------
def test_golden_custom_vjp_value_and_grad():
    from test_codegen import check_golden
    check_golden("custom_vjp_log1pexp.py", graphc.value_and_grad(loss).source(X))


def test_golden_custom_jvp_jvp():
    from test_codegen import check_golden

    # A function of its own: graphc.jvp caches its compiled code per function, and the line
    # comments of that code name the call site of the first trace in the process, which for
    # the module-level softplus depends on which tests ran before this one.
    @graphc.custom_jvp
    def softplus(x):
        return np.log1p(np.exp(x))

    @softplus.defjvp
    def _rule(primals, tangents):
        (x,), (t,) = primals, tangents
        return softplus(x), t / (1.0 + np.exp(-x))
    check_golden("custom_jvp_softplus_jvp.py",
                 graphc.jvp(softplus).source((X,), (np.ones_like(X),)))


def test_golden_checkpoint_grad():
    from test_codegen import check_golden
    ck = graphc.checkpoint(_block)
    check_golden("checkpoint_grad.py",
                 graphc.grad(lambda x: (ck(ck(x)) ** 2).sum()).source(np.ones((3, 4))))


@graphc.custom_vjp
def _affine(p, x):
    return p["a"] * x + p["b"]


def _affine_fwd(p, x):
    return _affine(p, x), (p, x)


def _affine_bwd(res, ct):
    p, x = res
    return {"a": ct * x, "b": ct}, ct * p["a"]


_affine.defvjp(_affine_fwd, _affine_bwd)


def test_custom_vjp_takes_pytree_arguments():
    """As jax.custom_vjp: a dict argument (it raised 'cannot trace a value of dtype object');
    bwd returns each argument's cotangent as a pytree like it."""
    p = {"a": np.array([1.0, 2.0, 3.0]), "b": np.ones(3)}
    x = np.array([0.5, -1.0, 2.0])
    got = graphc.grad(lambda p, x: np.sum(_affine(p, x) ** 2), argnums=(0, 1))(p, x)
    want = graphc.grad(lambda p, x: np.sum((p["a"] * x + p["b"]) ** 2), argnums=(0, 1))(p, x)
    for g, w in zip((got[0]["a"], got[0]["b"], got[1]), (want[0]["a"], want[0]["b"], want[1])):
        np.testing.assert_allclose(g, w, rtol=1e-15)
    assert graphc.check(lambda p, x: np.sum(_affine(p, x) ** 2), p, x, argnums=(0, 1)).ok
    per_example = graphc.vmap(graphc.grad(lambda p, x: np.sum(_affine(p, x) ** 2), argnums=1),
                              in_axes=(None, 0))(p, np.stack([x, 2 * x]))
    np.testing.assert_allclose(per_example[1], 2 * (p["a"] * 2 * x + 1) * p["a"], rtol=1e-15)


def test_custom_vjp_pytree_cotangent_of_another_structure_is_a_grad_error():
    @graphc.custom_vjp
    def double(p):
        return p["a"] * 2.0
    double.defvjp(lambda p: (double(p), None), lambda r, ct: ({"a": 2 * ct, "b": 0 * ct},))
    with pytest.raises(graphc.GradError, match=r"cotangent 0 is \{'a': \*, 'b': \*\}") as e:
        graphc.grad(lambda p: np.sum(double(p)))({"a": np.ones(3)})
    assert "test_custom.py:" in str(e.value)
