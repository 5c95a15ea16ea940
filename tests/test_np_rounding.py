"""Rounding, division, predicates and clip on traced values (issue 14): the operators
``// % divmod`` with NumPy's semantics, integer division by zero, the gradient conventions at
special points (documented in graphc/ops/rounding.py and graphc/ops/predicates.py), the
comparison and logic operators, and the errors NumPy raises."""
from __future__ import annotations

import warnings

import numpy as np
import pytest

import graphc

X = np.array([5.0, -5.0, 5.0, -5.0, 7.5, -0.5, 0.0, -0.0])
Y = np.array([3.0, 3.0, -3.0, -3.0, 2.0, 2.0, 2.0, 2.0])
IX = np.array([7, -7, 7, -7, 0, 3])
IY = np.array([2, 2, -2, -2, 5, 1])


def _same(got, want):
    got, want = np.asarray(got), np.asarray(want)
    assert got.dtype == want.dtype and got.shape == want.shape, (got.dtype, want.dtype)
    np.testing.assert_array_equal(got, want)
    if want.dtype.kind == "f":      # signed zeros too
        np.testing.assert_array_equal(np.signbit(got), np.signbit(want))


# --- // % divmod -------------------------------------------------------------------------
OPERATOR_FORMS = {
    "x // y": lambda x, y: x // y, "x % y": lambda x, y: x % y,
    "divmod": lambda x, y: divmod(x, y), "np.divmod": lambda x, y: np.divmod(x, y),
    "np.mod": lambda x, y: np.mod(x, y), "np.fmod": lambda x, y: np.fmod(x, y),
    "3.5 // y": lambda x, y: 3.5 // y, "2 % y": lambda x, y: 2 % y,
    "x % 2": lambda x, y: x % 2, "x // -2": lambda x, y: x // -2,
    "rdivmod": lambda x, y: divmod(7, y),
}


@pytest.mark.parametrize("form", list(OPERATOR_FORMS))
@pytest.mark.parametrize("x,y", [(X, Y), (IX, IY), (X.astype(np.float32), Y.astype(np.float32)),
                                 (IX.astype(np.int8), IY.astype(np.int8)), (X[:6], IY)],
                         ids=["f64", "int64", "f32", "int8", "f64-int64"])
def test_division_operators_match_numpy(form, x, y):
    fn = OPERATOR_FORMS[form]
    want, got = fn(x, y), graphc.compile(fn)(x, y)
    for w, g in zip(*(v if isinstance(v, tuple) else (v,) for v in (want, got))):
        _same(g, w)


def test_python_float_inputs_keep_numpy_semantics():
    f = graphc.compile(lambda a, b: (a // b, a % b))
    for a, b in [(5.0, -3.0), (-7.5, 2.0), (1.0, np.inf)]:
        _same(f(a, b)[0], np.floor_divide(a, b))
        _same(f(a, b)[1], np.remainder(a, b))


def test_integer_division_by_zero_is_zero_with_numpys_warning():
    f = graphc.compile(lambda x, y: (x // y, x % y, np.fmod(x, y)))
    x, y = np.array([3, -4, 5]), np.array([0, 2, 0])
    with pytest.warns(RuntimeWarning, match="divide by zero"):
        q, r, m = f(x, y)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _same(q, x // y)
        _same(r, x % y)
        _same(m, np.fmod(x, y))
    assert q.tolist() == [0, -2, 0] and r.tolist() == [0, 0, 0]


def test_float_division_by_zero_gives_numpys_inf_and_nan():
    f = graphc.compile(lambda x, y: (x // y, x % y))
    x, y = np.array([1.0, -1.0, 0.0]), np.zeros(3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for g, w in zip(f(x, y), (x // y, x % y)):
            _same(g, w)


def test_generated_code_reads_as_the_user_wrote_it():
    src = graphc.compile(lambda x, y: x // y + x % y).source(X, Y)
    assert "x // y" in src and "x % y" in src


# --- gradient conventions ------------------------------------------------------------------
def _grads(fn, *args):
    return graphc.grad(lambda *a: np.sum(fn(*a)), argnums=tuple(range(len(args))))(*args)


def test_mod_and_fmod_gradients():
    x, y = np.array([5.0, -5.0, 5.0, -5.0, 0.7]), np.array([3.0, 3.0, -3.0, -3.0, 0.25])
    dx, dy = _grads(lambda x, y: x % y, x, y)
    np.testing.assert_array_equal(dx, np.ones(5))
    np.testing.assert_array_equal(dy, -np.floor_divide(x, y))
    dx, dy = _grads(np.fmod, x, y)
    np.testing.assert_array_equal(dx, np.ones(5))
    np.testing.assert_array_equal(dy, -np.trunc(x / y))
    dx, dy = _grads(lambda x, y: x // y, x, y)
    assert not dx.any() and not dy.any()


@pytest.mark.parametrize("fn", [np.floor, np.ceil, np.rint, np.trunc, np.round, np.around,
                                lambda x: np.round(x, 2), lambda x: x.round(1)],
                         ids=["floor", "ceil", "rint", "trunc", "round", "around", "round2",
                              "method-round"])
def test_rounding_has_zero_gradient_even_at_jumps(fn):
    x = np.array([-1.5, -1.0, -0.0, 0.5, 1.0, 2.5, 3.7])
    g = graphc.grad(lambda x: np.sum(fn(x) * x))(x)   # d/dx (round(x) * x) = round(x)
    np.testing.assert_array_equal(g, fn(x))
    assert graphc.check(lambda x: np.sum(fn(x) * x ** 2), np.array([0.3, 1.7, -2.2])).ok


def test_fmax_fmin_pick_the_number_side_and_split_ties():
    x = np.array([1.0, np.nan, 2.0, np.nan, 3.0])
    y = np.array([np.nan, 4.0, 2.0, np.nan, 1.0])
    dx, dy = _grads(np.fmax, x, y)
    np.testing.assert_array_equal(dx, [1.0, 0.0, 0.5, 1.0, 1.0])
    np.testing.assert_array_equal(dy, [0.0, 1.0, 0.5, 0.0, 0.0])
    dx, dy = _grads(np.fmin, x, y)
    np.testing.assert_array_equal(dx, [1.0, 0.0, 0.5, 1.0, 0.0])
    np.testing.assert_array_equal(dy, [0.0, 1.0, 0.5, 0.0, 1.0])


def test_nan_to_num_passes_the_gradient_where_finite_only():
    x = np.array([1.5, np.nan, np.inf, -np.inf, -2.0])
    g = graphc.grad(lambda x: np.sum(np.nan_to_num(x, nan=1.0, posinf=2.0) * 3.0))(x)
    np.testing.assert_array_equal(g, [3.0, 0.0, 0.0, 0.0, 3.0])
    out = graphc.compile(lambda x: np.nan_to_num(x))(x.astype(np.float32))
    _same(out, np.nan_to_num(x.astype(np.float32)))


def test_heaviside_gradient_goes_to_x2_where_x1_is_zero():
    x1, x2 = np.array([-1.0, 0.0, 2.0, -0.0]), np.array([0.3, 0.5, 0.7, 0.9])
    d1, d2 = _grads(np.heaviside, x1, x2)
    np.testing.assert_array_equal(d1, np.zeros(4))
    np.testing.assert_array_equal(d2, [0.0, 1.0, 0.0, 1.0])


def test_fabs_gradient_is_abs_gradient():
    x = np.array([-2.0, 0.0, 3.0])
    np.testing.assert_array_equal(graphc.grad(lambda x: np.sum(np.fabs(x)))(x), [-1.0, 0.0, 1.0])


def test_clip_gradient_ties_split_and_bounds_get_the_rest():
    x, lo, hi = np.array([-2.0, -1.0, 0.0, 1.0, 2.0]), np.full(5, -1.0), np.full(5, 1.0)
    dx, dlo, dhi = _grads(np.clip, x, lo, hi)
    np.testing.assert_array_equal(dx, [0.0, 0.5, 1.0, 0.5, 0.0])
    np.testing.assert_array_equal(dlo, [1.0, 0.5, 0.0, 0.0, 0.0])
    np.testing.assert_array_equal(dhi, [0.0, 0.0, 0.0, 0.5, 1.0])


def test_predicates_and_logic_are_not_differentiable_data():
    def f(x):
        keep = np.logical_and(np.isfinite(x), np.logical_not(np.isnan(x)))
        return np.sum(np.where(keep, x, 0.0) ** 2)
    x = np.array([1.0, np.inf, np.nan, -2.0])
    np.testing.assert_array_equal(graphc.grad(f)(x), [2.0, 0.0, 0.0, -4.0])


# --- comparisons and logic -------------------------------------------------------------------
COMPARISONS = {">": lambda a, b: a > b, ">=": lambda a, b: a >= b, "<": lambda a, b: a < b,
               "<=": lambda a, b: a <= b, "==": lambda a, b: a == b, "!=": lambda a, b: a != b}


@pytest.mark.parametrize("op", list(COMPARISONS))
@pytest.mark.parametrize("other", [2, 2.5, -1, np.int32(3), np.array([1, 2, 3, 4])],
                         ids=["pyint", "pyfloat", "neg-pyint", "np.int32", "int-array"])
def test_comparisons_on_integer_arrays_and_scalars(op, other):
    fn = COMPARISONS[op]
    for x in (np.array([1, 2, 3, 4]), np.array([0, 1, 2, 200], np.uint8), np.array([1.5, 2.0, 2.5, -1.0])):
        f = graphc.compile(lambda x, o: (fn(x, o), fn(o, x)))
        for g, w in zip(f(x, other), (fn(x, other), fn(other, x))):
            _same(g, w)


def test_logic_operators_on_booleans():
    a, b = np.array([True, False, True, False]), np.array([True, True, False, False])
    f = graphc.compile(lambda a, b: (a & b, a | b, a ^ b, ~a, np.logical_xor(a, b),
                                     True & a, False | b))
    want = (a & b, a | b, a ^ b, ~a, a ^ b, True & a, False | b)
    for g, w in zip(f(a, b), want):
        _same(g, w)


@pytest.mark.parametrize("fn", [lambda x: x & 1, lambda x: x | x, lambda x: ~x, lambda x: 3 ^ x],
                         ids=["&", "|", "~", "^"])
def test_bitwise_operators_on_integers_are_an_error_not_a_logical_result(fn):
    with pytest.raises(graphc.UnsupportedError, match="bitwise"):
        graphc.compile(fn)(np.array([1, 2, 3]))


# --- keyword forms and errors ----------------------------------------------------------------
def test_clip_call_forms():
    x = np.linspace(-2, 2, 9)
    forms = [lambda x: np.clip(x, -1, 1), lambda x: np.clip(x, a_min=-1, a_max=None),
             lambda x: np.clip(x, min=-1), lambda x: np.clip(x, max=1.0),
             lambda x: x.clip(-1), lambda x: x.clip(max=0.5), lambda x: x.clip(None, 1),
             lambda x: np.clip(x, -1, 1, dtype=np.float32)]
    for fn in forms:
        _same(graphc.compile(fn)(x), fn(x))


def test_clip_errors_are_numpys():
    x = np.ones(3)
    with pytest.raises(TypeError, match="a_max"):
        graphc.compile(lambda x: np.clip(x, 0.0))(x)
    with pytest.raises(ValueError, match="forbidden"):
        graphc.compile(lambda x: np.clip(x, 0, 1, min=0))(x)
    with pytest.raises(graphc.InPlaceError):
        graphc.compile(lambda x: np.clip(x, 0, 1, out=x))(x)
    with pytest.raises(TypeError):
        graphc.compile(lambda x: np.clip(x, 0, 1, dtype=np.int64))(x)


def test_round_errors_and_out():
    x = np.ones(3)
    with pytest.raises(TypeError):
        graphc.compile(lambda x: np.round(x, 1.5))(x)
    with pytest.raises(graphc.InPlaceError):
        graphc.compile(lambda x: np.round(x, out=x))(x)
    with pytest.raises(graphc.InPlaceError):
        graphc.compile(lambda x: np.floor(x, out=x))(x)
    with pytest.raises(graphc.InPlaceError):
        graphc.compile(lambda x: np.nan_to_num(x, copy=False))(x)


def test_ufunc_dtype_keyword():
    x = np.array([1.7, -2.5])
    f = graphc.compile(lambda x: (np.floor(x, dtype=np.float32), np.fmax(x, 0.0, dtype=np.float32)))
    for g, w in zip(f(x), (np.floor(x, dtype=np.float32), np.fmax(x, 0.0, dtype=np.float32))):
        _same(g, w)


def test_integer_rounding_keeps_numpys_dtype_and_halves_to_even():
    x = np.array([15, 25, -35, 44], np.int16)
    f = graphc.compile(lambda x: (np.round(x, -1), np.floor(x), np.rint(x), x.round()))
    for g, w in zip(f(x), (np.round(x, -1), np.floor(x), np.rint(x), x.round())):
        _same(g, w)


def test_python_round_of_a_traced_value_is_a_clear_error():
    with pytest.raises(graphc.UnsupportedError, match="np.round"):
        graphc.compile(lambda x: round(x))(np.array([1.5]))


@pytest.mark.parametrize("fn", [lambda x, y: np.sum(x % y * x), lambda x, y: np.sum(np.fmod(x, y) ** 2),
                                lambda x, y: np.sum(np.fmax(x, y) * x),
                                lambda x, y: np.sum(np.heaviside(x, y) * y),
                                lambda x, y: np.sum(np.clip(x, -1, y) * x)],
                         ids=["%", "fmod", "fmax", "heaviside", "clip"])
def test_check_proves_the_rules(fn):
    x, y = np.array([2.3, -1.7, 0.4]), np.array([0.7, 0.9, -1.1])
    assert graphc.check(fn, x, y, argnums=(0, 1)).ok


def test_trace_and_drawing_show_the_new_ops():
    g = graphc.trace(lambda x, y: np.floor(x) + x % y + np.fmax(x, y), X, Y)
    text = str(g)
    assert "np.floor(x)" in text and "x % y" in text and "np.fmax(x, y)" in text
    assert g.to_dot() is not None
