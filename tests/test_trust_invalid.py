"""Issue 12 (trust): invalid NumPy calls raise what NumPy raises, and np.random is not
frozen into a graph.

Before this, graphc wrapped axes around with ``%`` (``np.concatenate(..., axis=1)`` on
1-d arrays concatenated along axis 0), truncated float sizes and slice bounds
(``a.reshape(3.0)``, ``a[1.7:]``), took a too-short boolean mask's ``nonzero`` as the
index, and traced ``np.random`` draws into constants: one dropout mask forever.
"""
import threading
import warnings

import numpy as np
import pytest

import graphc
from graphc import nn
from graphc.errors import AxisError, GraphcError, UnsupportedError

A1 = np.arange(3.0)
A2 = np.arange(6.0).reshape(2, 3)
A3 = np.arange(24.0).reshape(2, 3, 4)

# (id, argument, fn): NumPy raises on fn(argument); graphc must raise the same built-in
# classes (and NumPy's AxisError where NumPy raises it) while tracing.
INVALID = [
    # the list
    ("concatenate-axis1-1d", A1, lambda a: np.concatenate([a, a], axis=1)),
    ("stack-axis5", A1, lambda a: np.stack([a, a], axis=5)),
    ("expand_dims-5", A1, lambda a: np.expand_dims(a, 5)),
    ("swapaxes-0-3", A2, lambda a: np.swapaxes(a, 0, 3)),
    ("transpose-(3,)", A1, lambda a: np.transpose(a, (3,))),
    ("reshape-3.0", A1, lambda a: a.reshape(3.0)),
    ("slice-1.7", A1, lambda a: a[1.7:]),
    ("bool-mask-short", A1, lambda a: a[np.array([True, False])]),
    # negative axes out of range
    ("concatenate-axis-2-1d", A1, lambda a: np.concatenate([a, a], axis=-2)),
    ("stack-axis-3", A1, lambda a: np.stack([a, a], axis=-3)),
    ("expand_dims--3", A1, lambda a: np.expand_dims(a, -3)),
    ("swapaxes-0--3", A2, lambda a: np.swapaxes(a, 0, -3)),
    ("method-swapaxes", A2, lambda a: a.swapaxes(3, 0)),
    ("transpose-neg", A2, lambda a: np.transpose(a, (0, -3))),
    ("method-transpose-3", A1, lambda a: a.transpose(3)),
    ("sum-axis-2", A2, lambda a: np.sum(a, axis=2)),
    ("mean-axis--3", A2, lambda a: np.mean(a, axis=-3)),
    ("max-axis-2", A2, lambda a: a.max(axis=2)),
    ("min-axis--3", A2, lambda a: np.min(a, axis=-3)),
    ("squeeze-axis5", A2[None], lambda a: np.squeeze(a, 5)),
    ("ufunc-reduce-axis2", A2, lambda a: np.add.reduce(a, axis=2)),
    ("tensordot-axis-range", A2, lambda a: np.tensordot(a, a, axes=([2], [0]))),
    ("tensordot-too-many", A2, lambda a: np.tensordot(a, a, axes=3)),
    # repeated axes
    ("expand_dims-repeated", A1, lambda a: np.expand_dims(a, (0, 0))),
    ("transpose-repeated", A2, lambda a: np.transpose(a, (1, 1))),
    ("transpose-short", A3, lambda a: np.transpose(a, (0, 1))),
    ("sum-repeated", A2, lambda a: np.sum(a, axis=(1, -1))),
    ("mean-repeated", A2, lambda a: np.mean(a, axis=(0, 0))),
    ("squeeze-repeated", A2[None], lambda a: np.squeeze(a, (0, 0))),
    # floats and bools where NumPy wants an int
    ("concatenate-axis-bool", A1, lambda a: np.concatenate([a, a], axis=True)),
    ("concatenate-axis-float", A1, lambda a: np.concatenate([a, a], axis=0.0)),
    ("stack-axis-None", A1, lambda a: np.stack([a, a], axis=None)),
    ("swapaxes-None", A2, lambda a: np.swapaxes(a, 0, None)),
    ("stack-axis-float", A1, lambda a: np.stack([a, a], axis=1.0)),
    ("expand_dims-float", A1, lambda a: np.expand_dims(a, 0.0)),
    ("swapaxes-float", A2, lambda a: np.swapaxes(a, 0, 1.0)),
    ("transpose-float", A2, lambda a: np.transpose(a, (0, 1.0))),
    ("reshape-float-tuple", A1, lambda a: a.reshape((3.0,))),
    ("np-reshape-float", A1, lambda a: np.reshape(a, 3.0)),
    ("reshape-bool", A1, lambda a: a.reshape(True, 3)),
    ("broadcast_to-float", A1, lambda a: np.broadcast_to(a, (3.0,))),
    ("sum-axis-float", A2, lambda a: np.sum(a, axis=1.0)),
    ("sum-axis-bool", A2, lambda a: np.sum(a, axis=True)),
    ("max-axis-float", A2, lambda a: a.max(axis=1.0)),
    ("squeeze-float", A2[None], lambda a: np.squeeze(a, 0.0)),
    ("tensordot-size-mismatch", A2, lambda a: np.tensordot(a, a, axes=1)),
    ("tensordot-axes-float", A2, lambda a: np.tensordot(a, a, axes=1.0)),
    ("slice-stop-float", A1, lambda a: a[:1.0]),
    ("slice-step-float", A1, lambda a: a[::2.0]),
    # indices
    ("index-float", A1, lambda a: a[1.0]),
    ("index-float-array", A1, lambda a: a[np.array([0.0, 1.0])]),
    ("index-float-list", A1, lambda a: a[[0.0, 1.0]]),
    ("index-array-out-of-range", A1, lambda a: a[np.array([0, 3])]),
    ("bool-mask-long", A1, lambda a: a[np.array([True, False, True, True])]),
    ("bool-mask-2d-wrong", A2, lambda a: a[np.array([[True, False]])]),
    ("bool-mask-second-axis", A2, lambda a: a[:, np.array([True, False])]),
    ("slice-step-0", A1, lambda a: a[::0]),
    ("index-out-of-range", A1, lambda a: a[3]),
    ("astype-float", A1, lambda a: a.astype(3.0)),
    ("sum-dtype-unknown", A1, lambda a: np.sum(a, dtype="foo")),
    # other shape mistakes
    ("concatenate-0d", A1, lambda a: np.concatenate([a[0], a[1]])),
    ("reshape-two-unknown", A2, lambda a: a.reshape(-1, -2)),
    ("reshape-size", A1, lambda a: a.reshape(4)),
    ("broadcast_to-negative", A1, lambda a: np.broadcast_to(a, (-1,))),
]


def _numpy_error(fn, arg):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            fn(arg)
        except Exception as e:       # noqa: BLE001 - whatever NumPy raises is the reference
            return e
    pytest.fail("NumPy accepts this call: the case does not belong in the table")


def _assert_like_numpy(error, reference):
    assert isinstance(error, GraphcError), error
    for builtin in (TypeError, ValueError, IndexError):
        if isinstance(reference, builtin):
            assert isinstance(error, builtin), (type(error).__mro__, type(reference).__mro__)
    if isinstance(reference, np.exceptions.AxisError):
        assert isinstance(error, np.exceptions.AxisError) and isinstance(error, AxisError)
    assert str(error).startswith(__file__ + ":"), str(error)    # names the user's line


@pytest.mark.parametrize("arg,fn", [c[1:] for c in INVALID], ids=[c[0] for c in INVALID])
@pytest.mark.parametrize("how", ["trace", "compile", "grad"])
def test_invalid_call_raises_like_numpy(how, arg, fn):
    reference = _numpy_error(fn, arg)
    run = {"trace": lambda: graphc.trace(fn, arg),
           "compile": lambda: graphc.compile(fn)(arg),
           "grad": lambda: graphc.grad(lambda a: np.sum(fn(a)))(arg)}[how]
    with pytest.raises(GraphcError) as info:
        run()
    _assert_like_numpy(info.value, reference)


def test_axis_error_is_numpys():
    with pytest.raises(np.exceptions.AxisError) as info:
        graphc.trace(lambda a: np.concatenate([a, a], axis=1), A1)
    e = info.value
    assert isinstance(e, graphc.ShapeError) and (e.axis, e.ndim) == (1, 1)
    assert "axis 1 is out of bounds for an array of dimension 1" in str(e)
    assert e.args == (str(e),) and "Hint:" in str(e)


# Valid calls stay valid, with NumPy's values: the checks must not be stricter than NumPy.
VALID = [
    ("concatenate-axis-1", A2, lambda a: np.concatenate([a, a], axis=-1)),
    ("concatenate-None", A2, lambda a: np.concatenate([a, a], axis=None)),
    ("stack-axis-last", A1, lambda a: np.stack([a, 2 * a], axis=-1)),
    ("stack-axis-1", A1, lambda a: np.stack([a, 2 * a], axis=1)),
    ("expand_dims-last", A2, lambda a: np.expand_dims(a, -1)),
    ("expand_dims-tuple", A1, lambda a: np.expand_dims(a, (0, -1))),
    ("swapaxes-neg", A3, lambda a: np.swapaxes(a, -1, 0)),
    ("transpose-neg", A3, lambda a: np.transpose(a, (-1, 0, 1))),
    ("method-transpose", A3, lambda a: a.transpose(2, 0, 1)),
    ("transpose-int64", A2, lambda a: a.transpose(np.int64(1), np.int64(0))),
    ("reshape-np-int", A2, lambda a: a.reshape(np.int64(3), 2)),
    ("reshape-minus-one", A2, lambda a: a.reshape(-1)),
    ("reshape-negative-unknown", A2, lambda a: a.reshape(-2, 3)),
    ("slice-np-int", A1, lambda a: a[np.int64(1):]),
    ("bool-mask", A1, lambda a: a[np.array([True, False, True])]),
    ("bool-mask-second-axis", A2, lambda a: a[:, np.array([True, False, True])]),
    ("sum-axis-neg", A2, lambda a: np.sum(a, axis=(-1, 0))),
    ("tensordot-1", A2, lambda a: np.tensordot(a, a.T, axes=1)),
    ("tensordot-lists", A2, lambda a: np.tensordot(a, a, axes=([0, 1], [0, 1]))),
    ("tensordot-negative-is-outer", A2, lambda a: np.tensordot(a, a, axes=-1)),
    ("broadcast_to-np-int", A1, lambda a: np.broadcast_to(a, (np.int64(2), 3))),
    ("squeeze-neg", A2[None], lambda a: np.squeeze(a, -3)),
    ("sum-axis-0d-array", A2, lambda a: np.sum(a, axis=np.array(1))),
]


@pytest.mark.parametrize("arg,fn", [c[1:] for c in VALID], ids=[c[0] for c in VALID])
def test_valid_call_matches_numpy(arg, fn):
    try:
        want = fn(arg)
    except Exception:                # noqa: BLE001 - an older NumPy may refuse it
        pytest.skip("this NumPy refuses the call")
    np.testing.assert_array_equal(graphc.compile(fn)(arg), want)


# --- graphc.nn functions that take an axis: traced and eager --------------------------
NN_AXIS = [
    ("softmax", lambda x: nn.softmax(x, axis=3)),
    ("softmax-neg", lambda x: nn.softmax(x, axis=-2)),
    ("log_softmax", lambda x: nn.log_softmax(x, axis=3)),
    ("logsumexp", lambda x: nn.logsumexp(x, axis=3)),
    ("maxout", lambda x: nn.maxout(x, 1, axis=1)),
    ("flatten", lambda x: nn.flatten(x, 3)),
]


@pytest.mark.parametrize("fn", [c[1] for c in NN_AXIS], ids=[c[0] for c in NN_AXIS])
@pytest.mark.parametrize("how", ["eager", "trace", "grad"])
def test_nn_axis_out_of_range(how, fn):
    run = {"eager": lambda: fn(A1), "trace": lambda: graphc.trace(fn, A1),
           "grad": lambda: graphc.grad(lambda x: np.sum(fn(x)))(A1)}[how]
    with pytest.raises(AxisError) as info:
        run()
    assert isinstance(info.value, np.exceptions.AxisError)
    assert str(info.value).startswith(__file__ + ":")


@pytest.mark.parametrize("how", ["eager", "trace"])
def test_nn_axis_float_is_a_type_error(how):
    fn = lambda x: nn.softmax(x, axis=0.0)   # noqa: E731
    with pytest.raises(UnsupportedError) as info:
        fn(A1) if how == "eager" else graphc.trace(fn, A1)
    assert isinstance(info.value, TypeError)


def test_nn_axis_in_range_still_works():
    x = np.array([[1.0, 2.0, 3.0], [0.0, 0.0, 0.0]])
    want = np.exp(x) / np.exp(x).sum(axis=0, keepdims=True)
    np.testing.assert_allclose(nn.softmax(x, axis=-2), want)
    np.testing.assert_allclose(graphc.compile(lambda v: nn.softmax(v, axis=0))(x), want)


# --- np.random inside a traced function -----------------------------------------------
RNG = np.random.default_rng(0)


def numpy_dropout(x):
    mask = np.random.rand(*x.shape) > 0.5
    return np.sum(x * mask / 0.5)


def generator_dropout(x):
    return np.sum(x * (RNG.random(x.shape) > 0.5))


class Model:
    def __init__(self):
        self.rng = np.random.default_rng(1)

    def loss(self, x):
        return np.sum(x * self.rng.normal(size=x.shape))


def _noise(rng, shape):
    return rng.normal(size=shape)


def seeded_local_noise(x):
    rng = np.random.default_rng(7)      # the same numbers at every call: freezing them is exact
    return np.sum(x * _noise(rng, x.shape))


@pytest.mark.parametrize("fn", [numpy_dropout, generator_dropout, Model().loss],
                         ids=["np.random", "module-generator", "attribute-generator"])
@pytest.mark.parametrize("how", ["trace", "compile", "grad"])
def test_np_random_in_traced_function_is_refused(how, fn, monkeypatch):
    # only this thread runs (a daemon thread, like Jupyter's, does not count)
    monkeypatch.setattr(threading, "enumerate", lambda: [threading.current_thread()])
    run = {"trace": lambda: graphc.trace(fn, np.ones(4)),
           "compile": lambda: graphc.compile(fn)(np.ones(4)),
           "grad": lambda: graphc.grad(fn)(np.ones(4))}[how]
    with pytest.raises(UnsupportedError) as info:
        run()
    msg = str(info.value)
    code = getattr(fn, "__func__", fn).__code__
    assert msg.startswith(f"{code.co_filename}:{code.co_firstlineno}: "), msg
    assert "frozen" in msg and "graphc.nn.dropout(x, rate, key)" in msg
    assert isinstance(info.value, TypeError)


def test_seeded_generator_local_to_the_trace_is_allowed():
    x = np.arange(4.0)
    np.testing.assert_allclose(graphc.compile(seeded_local_noise)(x), seeded_local_noise(x))
    np.testing.assert_allclose(graphc.grad(seeded_local_noise)(x),
                               np.random.default_rng(7).normal(size=4))


def test_graphc_dropout_with_a_key_is_not_refused():
    def f(x, key):
        return np.sum(nn.dropout(x, 0.5, key))
    g = graphc.grad(f)
    a, b = g(np.ones(64), np.int64(1)), g(np.ones(64), np.int64(2))
    assert set(np.unique(a)) <= {0.0, 2.0} and not np.array_equal(a, b)


def test_np_random_outside_the_trace_is_fine():
    noise = np.random.rand(4)
    np.testing.assert_allclose(graphc.grad(lambda x: np.sum(x * noise))(np.ones(4)), noise)


def test_np_random_with_other_threads_alive_warns():
    # np.random's global state is shared: another thread may have drawn, so only warn
    stop = threading.Event()
    worker = threading.Thread(target=stop.wait)
    worker.start()
    try:
        with pytest.warns(RuntimeWarning, match="frozen") as record:
            graphc.trace(numpy_dropout, np.ones(4))
    finally:
        stop.set()
        worker.join()
    assert record[0].filename == __file__


def test_np_random_with_a_daemon_thread_alive_is_refused():
    # Jupyter's kernel runs daemon threads: they do not draw from np.random
    stop = threading.Event()
    worker = threading.Thread(target=stop.wait, daemon=True)
    worker.start()
    try:
        with pytest.raises(UnsupportedError, match="frozen"):
            graphc.trace(numpy_dropout, np.ones(4))
    finally:
        stop.set()
        worker.join()
