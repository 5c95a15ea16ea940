"""Issue 12, "clear errors instead of raw exceptions" (library API).

Each test is a mistake (or a NumPy idiom) that used to end in a raw
AttributeError, NameError, KeyError, ZeroDivisionError, RecursionError or a
NumPy ValueError; now it works as NumPy does, or raises a graphc error that
names this file's line and says how to fix it.
"""
import functools
import io
import pathlib
import tokenize

import numpy as np
import pytest

import graphc
import graphc.errors as E

HERE = __file__


def _line_of(info):
    """The line number the error names, which must be in this file."""
    where = info.value.where
    assert where is not None and where.startswith(HERE + ":"), where
    return int(where.rpartition(":")[2])


# --- 1. ndarray methods on traced values -------------------------------------------
X3 = np.random.default_rng(0).normal(size=(3, 4, 5))


@pytest.mark.parametrize("method, kwargs", [
    ("var", {}), ("var", {"axis": 1}), ("var", {"axis": (0, 2), "ddof": 1, "keepdims": True}),
    ("std", {"axis": -1}), ("std", {"ddof": 1}), ("std", {"axis": 0, "ddof": 2.5}),
    ("prod", {}), ("prod", {"axis": 1}), ("prod", {"axis": (0, 2), "keepdims": True}),
    ("argmax", {}), ("argmax", {"axis": 1}), ("argmax", {"axis": 2, "keepdims": True}),
    ("argmax", {"keepdims": True}), ("copy", {}),
])
def test_tracer_methods_match_numpy(method, kwargs):
    f = graphc.compile(lambda x: getattr(x, method)(**kwargs))
    got, want = f(X3), getattr(X3, method)(**kwargs)
    assert got.shape == want.shape and got.dtype == want.dtype
    np.testing.assert_allclose(got, want, rtol=1e-13)


@pytest.mark.parametrize("dtype", [np.int8, np.int32, np.uint8, np.bool_, np.float32, np.float16])
@pytest.mark.parametrize("method", ["var", "std", "prod"])
def test_tracer_method_dtypes_follow_numpy(method, dtype):
    a = np.random.default_rng(1).integers(0, 3, size=(4, 3)).astype(dtype)
    got = graphc.compile(lambda a: getattr(a, method)(axis=0))(a)
    want = getattr(a, method)(axis=0)
    assert got.dtype == want.dtype
    np.testing.assert_allclose(got, want, rtol=2e-3)


def test_prod_gradient_is_exact_with_zeros():
    v = np.array([2.0, 0.0, 3.0, 5.0, 7.0])
    np.testing.assert_array_equal(graphc.grad(lambda v: v.prod())(v), [0, 210, 0, 0, 0])
    w = np.arange(1.0, 8.0)
    np.testing.assert_allclose(graphc.grad(lambda w: w.prod())(w), w.prod() / w, rtol=1e-15)
    np.testing.assert_allclose(graphc.grad(lambda v: v.var(ddof=1))(v),
                               2 * (v - v.mean()) / 4, rtol=1e-14)
    assert graphc.compile(lambda x: x.prod())(np.zeros((0, 3))) == 1.0


def test_method_arguments_numpy_refuses_are_refused():
    for call in (lambda x: x.var(correction=1), lambda x: x.std(out=x), lambda x: x.prod(bogus=1)):
        with pytest.raises(TypeError):
            graphc.trace(call, np.ones(3))


def test_copy_is_a_new_traced_value():
    g = graphc.trace(lambda x: x.copy() * 2.0, np.ones(2))
    assert "mul" in str(g)


@pytest.mark.parametrize("name, hint", [("nonzero", "np.where"),
                                        ("searchsorted", "docs/ops.md"), ("fill", "np.where")])
def test_unsupported_method_names_method_line_and_fix(name, hint):
    def f(x):
        return getattr(x, name)()
    with pytest.raises(E.UnsupportedAttributeError) as info:
        graphc.trace(f, np.ones(3))
    msg = str(info.value)
    assert f".{name}()" in msg and hint in info.value.hint
    assert isinstance(info.value, AttributeError) and isinstance(info.value, graphc.GraphcError)
    assert _line_of(info) == f.__code__.co_firstlineno + 1
    assert "Tracer" not in msg


def test_unknown_attribute_and_hasattr():
    seen = {}

    def f(x):
        seen["nonzero"] = hasattr(x, "nonzero")
        seen["sum"] = hasattr(x, "sum")
        seen["probe"] = hasattr(x, "__array_interface__")
        return x.sum()
    graphc.trace(f, np.ones(3))
    assert seen == {"nonzero": False, "sum": True, "probe": False}
    with pytest.raises(AttributeError, match="no attribute 'sume'") as info:
        graphc.trace(lambda x: x.sume(), np.ones(3))
    assert isinstance(info.value, graphc.GraphcError) and "spelling" in info.value.hint


@pytest.mark.parametrize("method", ["item", "tolist"])
def test_item_and_tolist_are_control_flow_errors(method):
    def f(x):
        return x * getattr(x, method)()
    with pytest.raises(graphc.ControlFlowError, match=rf"\.{method}\(\)") as info:
        graphc.grad(f)(1.5)
    assert "x[i]" in info.value.hint
    assert _line_of(info) == f.__code__.co_firstlineno + 1


# --- 2. non-finite and range defaults ---------------------------------------------------
@pytest.mark.filterwarnings("ignore:invalid value:RuntimeWarning")
def test_nonfinite_float_defaults_are_written_as_numpy_names():
    def f(x, a=-np.inf, b=float("nan"), c=np.float32(np.inf), d={"k": [np.inf]}):
        return np.maximum(x, a) + d["k"][0] * 0.0 + b * 0.0 + c * 0.0
    cf = graphc.compile(f)
    x = np.array([1.0, -2.0])
    np.testing.assert_array_equal(cf(x), f(x))
    src = cf.source(x)
    assert "a=-np.inf, b=np.nan, c=np.float32(np.inf), d={'k': [np.inf]}" in src


def test_range_default_is_static():
    def f(x, r=range(1, 6, 2)):
        return x * sum(r)
    cf = graphc.compile(f)
    assert cf(2.0) == 18.0
    assert "r=range(1, 6, 2)" in cf.source(2.0)
    assert cf(2.0, range(3)) == 6.0


# --- 3. Python ints beyond int64 -------------------------------------------------------
def test_big_python_int_with_floats_follows_numpy():
    x = np.ones(3)
    np.testing.assert_array_equal(graphc.compile(lambda x, n: x * n)(x, 2 ** 70), x * 2 ** 70)
    x32 = x.astype(np.float32)
    got = graphc.compile(lambda x: x - 2 ** 64)(x32)
    assert got.dtype == np.float32
    np.testing.assert_array_equal(got, x32 - 2 ** 64)
    np.testing.assert_array_equal(graphc.grad(lambda x: (x * 2 ** 70).sum())(x), 2.0 ** 70)


def test_big_python_int_with_integers_is_an_overflow_error():
    def f(counts):
        return counts * 2 ** 70
    with pytest.raises(OverflowError, match="out of bounds for int64") as info:
        graphc.compile(f)(np.arange(3))
    assert isinstance(info.value, E.IntegerOverflowError)
    assert _line_of(info) == f.__code__.co_firstlineno + 1


# --- 4. pooling and maxout with 0 -------------------------------------------------------
@pytest.mark.parametrize("call", [
    lambda: graphc.nn.max_pool1d(np.ones((1, 1, 4)), 0),
    lambda: graphc.nn.max_pool1d(np.ones((1, 1, 4)), 2, stride=0),
    lambda: graphc.nn.avg_pool1d(np.ones((1, 1, 4)), 0),
    lambda: graphc.nn.max_pool2d(np.ones((1, 1, 4, 4)), 0),
    lambda: graphc.nn.max_pool2d(np.ones((1, 1, 4, 4)), 2, stride=(1, 0)),
    lambda: graphc.nn.avg_pool2d(np.ones((1, 1, 4, 4)), 0),
    lambda: graphc.nn.lp_pool2d(np.ones((1, 1, 4, 4)), 2, 0),
    lambda: graphc.nn.maxout(np.ones((2, 4)), 0),
    lambda: graphc.nn.maxout(np.ones((2, 4)), 2, axis=5),
], ids=["max1d-k0", "max1d-s0", "avg1d-k0", "max2d-k0", "max2d-s0", "avg2d-k0", "lp-k0",
        "maxout-0", "maxout-axis"])
def test_pooling_and_maxout_with_zero_raise_value_errors(call):
    with pytest.raises(ValueError) as info:
        call()
    assert isinstance(info.value, graphc.ShapeError)
    assert info.value.where.startswith(HERE + ":") and info.value.hint


def test_pooling_zero_inside_a_trace():
    def f(x):
        return graphc.nn.max_pool1d(x, 0).sum()
    with pytest.raises(graphc.ShapeError, match="kernel_size") as info:
        graphc.grad(f)(np.ones((1, 1, 4)))
    assert _line_of(info) == f.__code__.co_firstlineno + 1


# --- 5. format specs ---------------------------------------------------------------
def test_format_spec_on_a_traced_value():
    def f(x):
        print(f"loss {x:.3f}")
        return x
    with pytest.raises(graphc.ControlFlowError, match=r"\{:\.3f\}") as info:
        graphc.trace(f, 1.0)
    assert "after" in info.value.hint
    assert _line_of(info) == f.__code__.co_firstlineno + 1
    out = io.StringIO()
    graphc.trace(lambda x: print(f"{x}", file=out) or x, 1.0)    # no spec: still fine
    assert "traced" in out.getvalue()


# --- 6. traced values written into NumPy buffers ------------------------------------
def _buffer_scalar(x):
    buf = np.zeros(3)
    buf[0] = x[1]
    return buf.sum()


def _buffer_slice(x):
    buf = np.zeros(3)
    buf[:2] = x[:2]
    return buf.sum()


def _buffer_iadd(x):
    buf = np.zeros(3)
    buf[0] += x[0]
    return buf.sum()


@pytest.mark.parametrize("fn", [_buffer_scalar, _buffer_slice, _buffer_iadd])
def test_traced_value_into_numpy_buffer_is_an_in_place_error(fn):
    for run in (lambda: graphc.trace(fn, np.ones(3)), lambda: graphc.grad(fn)(np.ones(3))):
        with pytest.raises(graphc.InPlaceError, match="NumPy array") as info:
            run()
        assert "np.zeros_like(x)" in info.value.hint
        assert _line_of(info) == fn.__code__.co_firstlineno + 2
        assert "setting an array element" not in str(info.value)


def test_explicit_float_is_still_a_control_flow_error():
    # (a guard: the buffer detection must not change what float(x) says)
    # (issue 15: float() of a value no gradient flows through is baked in with a guard;
    # of a differentiated one it would cut the gradient)
    with pytest.raises(graphc.ControlFlowError, match="float()"):
        graphc.grad(lambda x: float(x) * x)(1.0)


# --- 7. grad of a pair or of None --------------------------------------------------
def test_grad_of_a_pair_suggests_has_aux():
    def f(x):
        return np.sum(x ** 2), x
    for make in (graphc.grad, graphc.value_and_grad):
        with pytest.raises(graphc.GradError, match="tuple of 2 values") as info:
            make(f)(np.ones(3))
        assert "has_aux=True" in info.value.hint
        assert _line_of(info) == f.__code__.co_firstlineno


def test_grad_of_none_says_so():
    def f(x):
        np.sum(x ** 2)
    with pytest.raises(graphc.GradError, match="returned None") as info:
        graphc.grad(f)(np.ones(3))
    assert "return" in info.value.hint
    with pytest.raises(graphc.GradError, match="loss is None"):
        graphc.grad(lambda x: (None, x), has_aux=True)(np.ones(3))


# --- 8. functions and modules as static values ---------------------------------------
def test_function_and_module_defaults_are_static():
    def f(x, act=np.tanh, xp=np, dtype=np.float32, post=lambda z: z * 2.0):
        return post(xp.sum(act(x)).astype(dtype))
    cf = graphc.compile(f)
    x = np.array([0.5, -1.0])
    np.testing.assert_allclose(cf(x), f(x), rtol=1e-6)
    assert cf(x).dtype == np.float32
    assert "act=np.tanh, xp=np, dtype=np.float32, post=None" in cf.source(x)
    np.testing.assert_allclose(graphc.grad(f)(x), 2 * (1 - np.tanh(x) ** 2), rtol=1e-6)


def test_function_arguments_are_static_and_retrace():
    calls = []

    def f(x, act):
        calls.append(act)
        return act(x).sum()
    cf = graphc.compile(f)
    x = np.array([0.5, -1.0])
    assert cf(x, np.tanh) == pytest.approx(np.tanh(x).sum())
    assert cf(x, np.sin) == pytest.approx(np.sin(x).sum())
    assert cf(x, np.tanh) == pytest.approx(np.tanh(x).sum())
    scaled = functools.partial(np.multiply, 3.0)
    assert cf(x, scaled) == pytest.approx(3 * x.sum())
    assert calls == [np.tanh, np.sin, scaled]


# --- 9. a method decorated in its class body ------------------------------------------
class _Model:
    scale = 3.0

    @graphc.grad
    def loss(self, x):
        return self.scale * np.sum(x ** 2)

    def plain_loss(self, x):
        return self.scale * np.sum(x ** 2)


def test_method_decorated_in_class_body_suggests_bound_method():
    with pytest.raises(graphc.UnsupportedError, match="class body") as info:
        _Model().loss(np.ones(2))
    assert "graphc.grad(obj.loss)" in info.value.hint
    assert info.value.where.startswith(HERE + ":")
    m = _Model()
    np.testing.assert_allclose(graphc.grad(m.plain_loss)(np.ones(2)), [6.0, 6.0])


# --- 10. trace(3, x), Spec -------------------------------------------------------
def test_trace_of_a_non_callable():
    with pytest.raises(graphc.SignatureError, match="needs a function") as info:
        graphc.trace(3, np.ones(2))
    assert "graphc.trace(f, x)" in info.value.hint and info.value.where.startswith(HERE)


@pytest.mark.parametrize("args, error, text", [
    (("abc",), graphc.SignatureError, "tuple of ints"),
    (((2, 3.5),), graphc.SignatureError, "tuple of ints"),
    (((2, None),), graphc.SignatureError, "tuple of ints"),
    (((-3,),), graphc.ShapeError, "negative"),
    (((3,), "foo"), graphc.UnsupportedError, "not a NumPy dtype"),
    (((3,), 5), graphc.UnsupportedError, "not a NumPy dtype"),
])
def test_spec_errors(args, error, text):
    with pytest.raises(error, match=text) as info:
        graphc.Spec(*args)
    assert info.value.where.startswith(HERE + ":") and info.value.hint


def test_spec_still_accepts_ints_and_numpy_ints():
    # (a guard, not a regression test: these worked before)
    with pytest.raises(graphc.UnsupportedError, match="complex"):
        graphc.Spec((3,), "complex128")
    assert graphc.Spec(3).shape == (3,)
    assert graphc.Spec((np.int64(2), 3), np.float32).shape == (2, 3)
    assert graphc.Spec([], "f4").dtype == np.float32


# --- 11. deep pytrees ------------------------------------------------------------
def _deep(n):
    t = 1.0
    for _ in range(n):
        t = [t]
    return t


@pytest.mark.parametrize("run", [
    lambda t: graphc.trace(lambda t: 1.0, t),
    lambda t: graphc.compile(lambda t: 1.0)(t),
    lambda t: graphc.compile(lambda t: 1.0).source(t),
    lambda t: graphc.grad(lambda x, t: x)(1.0, t),
    lambda t: graphc.trace(lambda x: t, 1.0),
], ids=["trace", "compile", "source", "grad", "result"])
def test_deep_pytree_is_a_clear_error(run):
    with pytest.raises(graphc.UnsupportedError, match="levels deep") as info:
        run(_deep(900))
    assert info.value.where.startswith(HERE + ":")


def test_self_containing_list_and_moderate_depth():
    loop = [1.0]
    loop.append(loop)
    with pytest.raises(graphc.UnsupportedError, match="contains itself"):
        graphc.compile(lambda t: 1.0)(loop)
    t = _deep(90)
    assert graphc.compile(lambda t: t)(t) == t


# --- hints cite docs/, not API.md -------------------------------------------------------
_NUMPY_ASARRAY = np.asarray


def test_no_message_cites_api_md():
    root = pathlib.Path(graphc.__file__).parent
    cited = []
    for path in root.rglob("*.py"):
        with open(path, "rb") as fh:
            for tok in tokenize.tokenize(fh.readline):
                if tok.type == tokenize.STRING and "API.md" in tok.string:
                    cited.append(f"{path.name}:{tok.start[0]}")
    assert cited == []
    with pytest.raises(graphc.UnsupportedError) as info:
        graphc.trace(lambda x: np.linalg.eig(x), np.eye(2))
    assert "docs/ops.md" in str(info.value)
    with pytest.raises(graphc.UnsupportedError) as info:
        # (np.asarray(x) in user code is x itself since issue 14; NumPy's own function,
        # taken before tracing, still converts and fails)
        graphc.trace(lambda x: _NUMPY_ASARRAY(x) * 2, np.ones(2))
    assert "docs/ops.md" in str(info.value)


def _reserved(a, values=None, target=None, budget=None):
    return np.sum(a)


@pytest.mark.parametrize("call", [
    lambda: graphc.trace(_reserved, np.ones(2), values=np.ones(2)),
    lambda: graphc.export(_reserved, np.ones(2), path="never_written.py", target=np.ones(2)),
    lambda: graphc.check(_reserved, np.ones(2), budget=np.ones(2)),
    lambda: graphc.check(_reserved, np.ones(2), budget=True),
], ids=["trace values=", "export target=", "check budget=", "check budget=True"])
def test_graphcs_own_keywords_refuse_values_meant_for_the_function(call):
    """graphc's keywords are never passed to fn: an array meant for a parameter of that
    name gave NumPy's raw 'truth value of an array' error, with no line of the user's."""
    with pytest.raises(graphc.OptionError, match="graphc's own keyword") as e:
        call()
    assert "test_trust_errors.py:" in str(e.value)


def _full(x):
    return np.full((2, 4), x[0])


def _arange(x):
    return np.arange(0.0, x[0], 0.1)


def _vectorized(x):
    import math
    return np.vectorize(math.erf)(x)


@pytest.mark.parametrize("fn, name", [(_full, "np.full"), (_arange, "np.arange"),
                                      (_vectorized, "np.vectorize")])
def test_a_numpy_function_that_needs_a_concrete_array_is_named(fn, name):
    """The message said only 'a traced value was converted to a concrete NumPy array'."""
    with pytest.raises(graphc.UnsupportedError) as e:
        graphc.compile(fn)(np.array([0.3, 0.5]))
    assert str(e.value).split(": ", 1)[1].startswith(f"{name} needs a concrete NumPy array")
    assert "test_trust_errors.py:" in str(e.value)
