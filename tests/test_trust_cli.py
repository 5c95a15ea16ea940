"""Issue 12 (trust), the command line and the compiled callable's lifetime:
CLI errors name the user's file:line and exit 1 (usage errors 2), hints speak
CLI, ``--arg`` arrays are made in their dtype and absurd sizes refused; hints cite
docs/ (not API.md); compiled callables pickle; linecache entries of generated
modules go away with their compiled functions."""
import gc
import linecache
import multiprocessing
import pathlib
import pickle
import re
import textwrap
import traceback

import numpy as np
import pytest

import graphc

ROOT = pathlib.Path(__file__).resolve().parents[1]


# --- pickling (API.md section 2: multiprocessing and Dask) ----------------------------
def plain_loss(x, w):
    return np.sum(np.tanh(x * w) ** 2)


@graphc.grad
def decorated_loss_grad(x):
    return np.sum(np.sin(x) * x)


@graphc.compile(check_finite=True)
def decorated_checked(x):
    return np.log(x)


X = np.array([0.5, 1.0, 2.0])


@pytest.mark.parametrize("make", [
    lambda: graphc.grad(plain_loss),
    lambda: graphc.grad(plain_loss, argnums=(0, 1)),
    lambda: graphc.value_and_grad(plain_loss, argnums=1),
    lambda: graphc.compile(plain_loss),
    lambda: graphc.grad(plain_loss, check_finite=True, cache_size=3),
], ids=["grad", "grad-argnums", "value_and_grad", "compile", "grad-options"])
def test_compiled_pickles_and_calls(make):
    compiled = make()
    expected = compiled(X, 0.7)      # fill its cache (and its lock) first
    again = pickle.loads(pickle.dumps(compiled))
    assert again is not compiled and type(again) is type(compiled)
    assert again._argnums == compiled._argnums and again.cache_size == compiled.cache_size
    assert again.check_finite == compiled.check_finite
    got = again(X, 0.7)
    for a, b in zip(np.atleast_1d(np.asarray(expected, dtype=object)),
                    np.atleast_1d(np.asarray(got, dtype=object))):
        np.testing.assert_array_equal(a, b)
    assert again.source(X, 0.7) == compiled.source(X, 0.7)
    # The original still works after being pickled (its lock and cache untouched).
    np.testing.assert_array_equal(np.asarray(compiled(X, 0.7), dtype=object).ravel()[0],
                                  np.asarray(expected, dtype=object).ravel()[0])


def test_decorated_module_level_function_pickles_by_reference():
    for obj in (decorated_loss_grad, decorated_checked):
        data = pickle.dumps(obj)
        assert pickle.loads(data) is obj
    np.testing.assert_allclose(pickle.loads(pickle.dumps(decorated_loss_grad))(X),
                               np.sin(X) + X * np.cos(X))
    with pytest.raises(graphc.errors.NonFiniteError):
        with np.errstate(divide="ignore"):
            pickle.loads(pickle.dumps(decorated_checked))(np.array([0.0, 1.0]))


def test_local_function_gives_pythons_pickling_error():
    """A lambda is not picklable by reference: Python's own error, not the RLock one."""
    with pytest.raises((pickle.PicklingError, AttributeError)) as info:
        pickle.dumps(graphc.grad(lambda x: np.sum(x)))
    assert "RLock" not in str(info.value)


def _call_in_child(compiled, *args):
    return compiled(*args)


def test_multiprocessing_spawn_round_trip():
    """A fresh interpreter unpickles both kinds (function by reference, options by value)."""
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(1) as pool:
        got = pool.apply(_call_in_child, (graphc.grad(plain_loss, argnums=1), X, 0.7))
        got_dec = pool.apply(_call_in_child, (decorated_loss_grad, X))
    np.testing.assert_allclose(got, np.sum(2 * np.tanh(X * 0.7) / np.cosh(X * 0.7) ** 2 * X))
    np.testing.assert_allclose(got_dec, np.sin(X) + X * np.cos(X))


# --- linecache: generated modules are released with their compiled functions ---------
def _graphc_lines():
    return sum(1 for k in list(linecache.cache) if str(k).startswith("<graphc:"))


def test_fresh_grad_objects_leave_no_linecache_entries():
    gc.collect()
    before = _graphc_lines()
    for _ in range(2000):
        df = graphc.grad(lambda x: np.sum(np.sin(x) * x))
        df(X)
        del df
    gc.collect()
    assert _graphc_lines() - before < 100


def test_source_only_objects_leave_no_linecache_entries():
    gc.collect()
    before = _graphc_lines()
    for _ in range(300):
        graphc.value_and_grad(lambda x: np.sum(np.cos(x))).source(X)
    gc.collect()
    assert _graphc_lines() - before < 50


def _generated_filename(compiled):
    entry = next(iter(compiled._cache.values()))
    import inspect
    return inspect.unwrap(entry.fn).__code__.co_filename


def test_live_function_keeps_its_lines_and_so_does_a_kept_traceback():
    f = graphc.compile(lambda x: np.log(x) * 2.0)
    with np.errstate(divide="raise"):
        with pytest.raises(FloatingPointError) as info:
            f(np.zeros(3))
    name = _generated_filename(f)
    assert linecache.getline(name, 1)                  # live: readable
    tb = info.value.__traceback__
    del f
    gc.collect()
    text = "".join(traceback.format_tb(tb))
    assert "np.log(x)" in text                         # the frame's code keeps the entry
    del info, tb, text
    gc.collect()
    assert name not in linecache.cache


# --- hints cite docs/ (which users have), never API.md (which they do not) -----------
def _string_literals(path):
    import io
    import tokenize
    with open(path, encoding="utf-8") as fh:
        for tok in tokenize.generate_tokens(io.StringIO(fh.read()).readline):
            if tok.type == tokenize.STRING:
                yield tok.start[0], tok.string


def test_no_message_cites_api_md():
    cited = [f"{p.relative_to(ROOT)}:{line}"
             for folder in ("graphc", "tools") for p in sorted((ROOT / folder).rglob("*.py"))
             for line, text in _string_literals(p) if "API.md" in text]
    cited += [f"{p.relative_to(ROOT)}" for p in sorted((ROOT / "docs").glob("*.md"))
              if "API.md" in p.read_text(encoding="utf-8")]
    assert cited == []
    # The pages the hints cite instead exist.
    hints = [text for p in sorted((ROOT / "graphc").rglob("*.py"))
             for _, text in _string_literals(p)]
    pages = set(re.findall(r"docs/(\w+\.md)", " ".join(hints)))
    assert {"ops.md", "errors.md"} <= pages
    assert all((ROOT / "docs" / page).is_file() for page in pages)


def test_unsupported_function_hint_cites_the_op_reference():
    with pytest.raises(graphc.errors.UnsupportedError) as info:
        graphc.trace(lambda x: np.linalg.norm(x), np.ones(3))
    assert "docs/ops.md" in str(info.value) and "API.md" not in str(info.value)
