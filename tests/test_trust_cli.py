"""Issue 12 (trust), the command line and the compiled callable's lifetime:
CLI errors name the user's file:line and exit 1 (usage errors 2), hints speak
CLI, ``--arg`` arrays are made in their dtype and absurd sizes refused; hints cite
docs/ (not API.md); compiled callables pickle; linecache entries of generated
modules go away with their compiled functions."""
import gc
import os
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
    lambda: graphc.value_and_grad(graphc.compile(plain_loss), argnums=(0, 1)),
], ids=["grad", "grad-argnums", "value_and_grad", "compile", "grad-options", "nested"])
def test_compiled_pickles_and_calls(make):
    compiled = make()
    expected = compiled(X, 0.7)      # fill its cache (and its lock) first
    again = pickle.loads(pickle.dumps(compiled))
    assert again is not compiled and type(again) is type(compiled)
    assert again._argnums == compiled._argnums and again.cache_size == compiled.cache_size
    assert again.check_finite == compiled.check_finite
    _assert_same(again(X, 0.7), expected)
    assert again.source(X, 0.7) == compiled.source(X, 0.7)
    # The original still works after being pickled (its lock and cache untouched).
    _assert_same(compiled(X, 0.7), expected)


def _assert_same(got, expected):
    if isinstance(expected, tuple):
        assert isinstance(got, tuple) and len(got) == len(expected)
        for g, e in zip(got, expected):
            _assert_same(g, e)
    else:
        np.testing.assert_array_equal(got, expected)


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


@pytest.mark.slow
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
    for _ in range(1000):
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
        graphc.trace(lambda x: np.linalg.eig(x), np.eye(3))
    assert "docs/ops.md" in str(info.value) and "API.md" not in str(info.value)


# --- the command line: errors in the user's file ---------------------------------------
from graphc import cli, target  # noqa: E402

EXAMPLE = ROOT / "examples" / "autodiff_trace.py"


def _write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def test_cli_syntax_error_names_file_line_and_caret(tmp_path, capsys):
    path = _write(tmp_path, "broken.py", """\
        import numpy as np
        def f(x)
            return x
        """)
    assert cli.main(["trace", f"{path}:f"]) == 1
    err = capsys.readouterr().err
    assert f"{path}:2: SyntaxError" in err
    lines = err.splitlines()
    assert lines[1].strip() == "def f(x)" and lines[2].strip() == "^"
    assert "Traceback" not in err and "importlib" not in err


def test_cli_sys_exit_at_import_is_reported(tmp_path, capsys):
    path = _write(tmp_path, "script.py", """\
        import sys
        sys.exit("usage: script.py N")
        def f(x):
            return x
        """)
    assert cli.main(["trace", f"{path}:f"]) == 1
    err = capsys.readouterr().err
    assert f"{path}:2: " in err and "sys.exit('usage: script.py N')" in err
    assert 'if __name__ == "__main__":' in err and "Traceback" not in err


def test_cli_exception_at_import_names_the_users_frames(tmp_path, capsys):
    path = _write(tmp_path, "fails.py", """\
        import numpy as np
        def helper():
            return np.zeros(2)[5]
        helper()
        def f(x):
            return x
        """)
    assert cli.main(["trace", f"{path}:f", "--arg", "x=1.0"]) == 1
    err = capsys.readouterr().err
    assert f"{path}:3: IndexError" in err and "np.zeros(2)[5]" in err
    assert f"called from {path}:4" in err and "helper()" in err
    assert "Traceback" not in err and "importlib" not in err
    assert not any(name.startswith("_graphc_cli_fails") for name in list(__import__("sys").modules))


# --- usage errors: exit 2 with the command's usage line ---------------------------------
@pytest.mark.parametrize("argv, needle", [
    (["trace", f"{EXAMPLE}:nope"], "no function 'nope'"),
    (["trace", str(EXAMPLE.parent / "activations.py")], "name one"),   # FILE.py alone: several @graphc.example functions
    (["trace", f"{EXAMPLE}:f", "--arg", "w1=abc"], "cannot read"),
    (["trace", f"{EXAMPLE}:f", "--grad", "--argnums", "5"], "--argnums 5: 5 is out of range"),
    (["source", f"{EXAMPLE}:f", "--grad", "--argnums", "0,-3"], "-3 is out of range"),
    (["check", f"{EXAMPLE}:f", "--argnums", "2"], "2 is out of range"),
    (["render", f"{EXAMPLE}:f", "--grad", "--argnums", "7", "-o", "x.dot"], "7 is out of range"),
])
def test_cli_usage_errors_print_usage_and_exit_2(argv, needle, capsys):
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"usage: graphc {argv[0]} ")
    assert f"graphc {argv[0]}: error: " in err and needle in err and "Traceback" not in err


# --- where: never the launcher, the runpy machinery or the test runner -------------------
def test_cli_error_outside_user_code_names_no_foreign_frame(tmp_path, capsys):
    out = tmp_path / "f.py"
    out.write_text("# mine\n")
    assert cli.main(["source", f"{EXAMPLE}:f", "-o", str(out)]) == 1
    err = capsys.readouterr().err
    assert "will not overwrite" in err
    assert "test_trust_cli.py" not in err and "_pytest" not in err and "pluggy" not in err


def _run_cli(tmp_path, *argv, launcher=True):
    import os
    import subprocess
    import sys
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    if launcher:   # what pip writes to bin/graphc
        script = tmp_path / "graphc-launcher"
        script.write_text("import re\nimport sys\nfrom graphc.cli import main\n"
                          "if __name__ == '__main__':\n    sys.exit(main())\n")
        cmd = [sys.executable, str(script)]
    else:
        cmd = [sys.executable, "-m", "graphc.cli"]
    return subprocess.run(cmd + list(argv), capture_output=True, text=True, env=env,
                          cwd=tmp_path, timeout=120)


@pytest.mark.slow
@pytest.mark.parametrize("launcher", [True, False], ids=["bin-script", "python-m"])
def test_cli_messages_never_name_the_launcher(tmp_path, launcher):
    user = _write(tmp_path, "model.py", """\
        import numpy as np
        def loss(x, w):
            return np.sum(np.tanh(x * w) ** 2)
        """)
    out = tmp_path / "out.py"
    out.write_text("# not graphc's\n")
    r = _run_cli(tmp_path, "check", f"{user}:loss", "--arg", "x=i64[3]", "--arg", "w=0.5",
                 "--argnums", "0", launcher=launcher)
    assert r.returncode == 1 and "integer" in r.stderr, r.stderr
    r2 = _run_cli(tmp_path, "source", f"{user}:loss", "--arg", "x=f64[3]", "--arg", "w=0.5",
                  "-o", str(out), launcher=launcher)
    assert r2.returncode == 1 and "will not overwrite" in r2.stderr, r2.stderr
    for err in (r.stderr, r2.stderr):
        assert "graphc-launcher" not in err and "runpy" not in err and "sys.exit(main())" not in err
        assert "Traceback" not in err


# --- hints speak flags ------------------------------------------------------------------
def test_cli_hints_spell_flags(tmp_path, capsys):
    out = tmp_path / "f.py"
    out.write_text("# mine\n")
    assert cli.main(["source", f"{EXAMPLE}:f", "-o", str(out)]) == 1
    err = capsys.readouterr().err
    assert "--overwrite" in err and "overwrite=True" not in err
    assert cli.main(["source", f"{EXAMPLE}:f", "--grad", "--arg", "w1=i64[2]",
                     "--argnums", "0"]) == 1
    err = capsys.readouterr().err
    assert "out of --argnums" in err and "argnums=" not in err


def test_cli_hint_translation_keeps_code_advice():
    assert cli.cli_hint("pass overwrite=True to replace it") == "pass --overwrite to replace it"
    assert cli.cli_hint("try argnums=(0, 1), or argnums=2") == "try --argnums 0,1, or --argnums 2"
    assert cli.cli_hint("argnums counts from 0") == "--argnums counts from 0"
    code = "write graphc.grad(inner, argnums=0)(y, x) instead"
    assert cli.cli_hint(code) == code


# --- --arg arrays: made in their dtype, absurd sizes refused before allocating ------------
def test_arg_float32_is_not_made_in_float64_first():
    import tracemalloc
    rng = np.random.default_rng(0)
    tracemalloc.start()
    try:
        value = target.parse_value("f32[1000,1000]", rng)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert value.dtype == np.float32 and value.shape == (1000, 1000)
    assert peak < 1.5 * value.nbytes        # a float64 array first would be 3x


@pytest.mark.parametrize("spec, dtype", [("f16[3,4]", np.float16), ("f64[5]", np.float64),
                                         ("i32[4]", np.int32), ("i64[2,2]", np.int64),
                                         ("bool[6]", np.bool_)])
def test_arg_arrays_keep_their_dtype_and_range(spec, dtype):
    value = target.parse_value(spec, np.random.default_rng(0))
    assert value.dtype == dtype
    if np.dtype(dtype).kind in "iu":
        assert value.min() >= 0 and value.max() <= 9


def test_arg_absurd_size_is_a_usage_error(capsys):
    with pytest.raises(cli.UsageError, match="2\\*\\*31"):
        target.parse_value("f32[100000,100000]", np.random.default_rng(0))
    assert cli.main(["trace", f"{EXAMPLE}:f", "--arg", "w2=f32[100000,100000]"]) == 2
    err = capsys.readouterr().err
    assert "10,000,000,000 elements" in err and "Traceback" not in err


def test_arg_larger_than_memory_is_a_usage_error(monkeypatch):
    monkeypatch.setattr(target, "_available_memory", lambda: 2 ** 20)
    with pytest.raises(cli.UsageError, match="GiB"):
        target.parse_value("f64[1000,1000]", np.random.default_rng(0))     # 8 MB > 1 MiB
    assert target.parse_value("f64[100]", np.random.default_rng(0)).shape == (100,)


def test_cli_exit_from_the_standard_library_names_the_users_call(tmp_path, capsys):
    path = _write(tmp_path, "argv_script.py", """\
        import argparse
        parser = argparse.ArgumentParser()
        args = parser.parse_args(["--bogus"])
        def f(x):
            return x
        """)
    assert cli.main(["trace", f"{path}:f", "--arg", "x=1.0"]) == 1
    err = capsys.readouterr().err
    assert f"{path}:3: " in err and "sys.exit(2)" in err and "parser.parse_args" in err
    assert "argparse.py" not in err and "Traceback" not in err


def test_generated_code_dying_inside_linecache_checkcache_is_safe(monkeypatch):
    """Found by CI (doctest -> pdb -> linecache.checkcache): a generated function collected
    while checkcache walks its snapshot of the cache removed a key under it (KeyError)."""
    import linecache
    df = graphc.grad(lambda x: np.sum(np.sin(x) * x))
    df(X)
    name = _generated_filename(df)
    real_stat = os.stat
    victims = [df]

    def stat_and_collect(*args, **kwargs):   # checkcache stats real files: die right there
        if victims:
            victims.clear()
            gc.collect()
        return real_stat(*args, **kwargs)

    linecache.cache["/nonexistent/graphc-test.py"] = (1, 1.0, ["x\n"], "/nonexistent/graphc-test.py")
    monkeypatch.setattr(os, "stat", stat_and_collect)
    del df
    linecache.checkcache()                    # raised KeyError before the fix
    monkeypatch.undo()
    graphc.grad(lambda x: np.sum(np.cos(x)))(X)   # the next module purges the dead name
    assert name not in linecache.cache
