"""The error catalogue (docs/errors.md) and the errors it documents.

Every case of tools/make_errors_doc.py runs here: its class, its built-in
base, the user's file:line, the quoted line, the hint and the case's own
expected text are asserted, and docs/errors.md must be exactly what the
generator writes from the real messages (so it cannot drift).
"""
import os
import pathlib
import shutil
import sys
import warnings

import numpy as np
import pytest

import graphc
import graphc.errors as E

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))
import make_errors_doc as catalogue  # noqa: E402

BUILTIN = {"ControlFlowError": TypeError, "InPlaceError": TypeError,
           "UnsupportedError": TypeError, "ShapeError": ValueError,
           "GraphcIndexError": (IndexError, ValueError), "GradError": (TypeError, ValueError),
           "EscapedTracerError": TypeError, "SignatureError": TypeError,
           "NonFiniteError": ValueError, "ExportError": ValueError,
           "RenderError": RuntimeError, "RenderPathError": (RuntimeError, ValueError),
           "OptionError": ValueError,
           "UnsupportedAttributeError": (TypeError, AttributeError),
           "IntegerOverflowError": OverflowError,
           "AxisError": (ValueError, IndexError, np.exceptions.AxisError),
           "LinAlgError": (ValueError, np.linalg.LinAlgError)}


@pytest.mark.parametrize("case", catalogue.CASES, ids=lambda c: c.id)
def test_catalogue_case(case):
    error, msg = catalogue.run_case(case)
    assert type(error).__name__ == case.error, msg
    assert isinstance(error, graphc.GraphcError)
    assert isinstance(error, BUILTIN[case.error])
    lineno = case.lineno + catalogue.PRELUDE.count("\n")
    assert msg.startswith(f"example.py:{lineno}: "), msg        # the user's file:line first
    quoted = (catalogue.PRELUDE + case.source).splitlines()[lineno - 1].strip()
    assert f"\n    {quoted}\n" in msg, msg                        # ... and that line's text
    assert "\n  Hint: " in msg, msg                               # ... and how to fix it
    for text in case.expect:
        assert text in msg, (text, msg)
    assert "Tracer" not in msg and "<traced" not in msg and "object at 0x" not in msg
    assert error.where == f"example.py:{lineno}" and error.hint


def test_every_error_class_is_catalogued():
    classes = catalogue.error_classes()
    assert {"NonFiniteError", "SignatureError", "ExportError", "RenderError",
            "EscapedTracerError", "OptionError"} <= set(classes)
    raised = {c.error for c in catalogue.CASES}
    for name, cls in classes.items():
        if name in catalogue.BASES:
            assert any(issubclass(c, cls) and c is not cls for c in classes.values())
        else:
            assert name in raised, f"{name} has no case in tools/make_errors_doc.py"
        # every class is a GraphcError and exported as graphc.<Name> (or graphc.errors)
        assert issubclass(cls, graphc.GraphcError)
        assert getattr(graphc, name, None) is cls or getattr(E, name, None) is cls or \
            name == "GraphcIndexError"


def test_catalogue_is_not_stale():
    text = catalogue.DOC.read_text()
    assert text == catalogue.render_doc(), \
        "docs/errors.md is stale: run python tools/make_errors_doc.py"
    for name in catalogue.error_classes():
        assert f"\n## {name}\n" in text
    for case in catalogue.CASES:
        section = text.split(f"### {case.title}\n", 1)[1].split("\n### ", 1)[0]
        assert "**Situation.**" in section and "**Message.**" in section and "**Fix.**" in section


# --- export ---------------------------------------------------------------------------
def _f(x):
    return np.sum(x * x)


def test_export_never_overwrites_silently(tmp_path):
    path = tmp_path / "f.py"
    graphc.export(_f, np.ones(2), path=path)
    first = path.read_text()
    for kwargs in ({}, {"overwrite": False}, {"overwrite": None}):
        with pytest.raises(graphc.ExportError, match="overwrite=True") as info:
            graphc.export(graphc.grad(_f), np.ones(2), path=path, **kwargs)
        assert f"{__file__}:" in str(info.value)
        assert path.read_text() == first
    graphc.export(graphc.grad(_f), np.ones(2), path=path, overwrite=True)
    assert "def _f_grad(x):" in path.read_text() or "def f_grad(x):" in path.read_text()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f.py"]   # no temporary left over


def test_export_to_a_directory_or_unwritable_path(tmp_path):
    with pytest.raises(graphc.ExportError, match="directory"):
        graphc.export(_f, np.ones(2), path=tmp_path)
    (tmp_path / "blocker").write_text("")
    with pytest.raises(graphc.ExportError, match="cannot write") as info:
        graphc.export(_f, np.ones(2), path=tmp_path / "blocker" / "f.py")
    assert "writable" in str(info.value)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["blocker"]


# --- render -------------------------------------------------------------------------------
def _fake_dot(folder, script):
    exe = folder / "dot"
    exe.write_text("#!/bin/sh\n" + script)
    exe.chmod(0o755)
    return exe


@pytest.mark.skipif(os.name != "posix", reason="a shell-script dot")
def test_render_with_a_failing_dot_leaves_no_file(tmp_path, monkeypatch):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    out = tmp_path / "out"
    # a dot that writes half a file and then fails
    _fake_dot(bin_dir, 'for a; do case "$a" in -o*) f="${a#-o}";; esac; done\n'
                       'prev=""; for a; do [ "$prev" = "-o" ] && f="$a"; prev="$a"; done\n'
                       'printf "<svg" > "$f"; echo "Error: out of memory" >&2; exit 2\n')
    monkeypatch.setenv("PATH", str(bin_dir))
    with pytest.raises(graphc.RenderError) as info:
        graphc.render(_f, np.ones(2), path=out / "f.svg")
    msg = str(info.value)
    assert "exit status 2" in msg and "out of memory" in msg and f"{__file__}:" in msg
    assert "dot -V" in msg
    assert not out.exists() or list(out.iterdir()) == []
    # a dot that crashes without output
    _fake_dot(bin_dir, "kill -SEGV $$\n")
    with pytest.raises(graphc.RenderError):
        graphc.render(_f, np.ones(2), path=out / "f.png")
    assert not out.exists() or list(out.iterdir()) == []
    # .dot needs no program at all
    assert graphc.render(_f, np.ones(2), path=out / "f.dot").read_text().startswith("digraph")


def test_render_without_dot_on_path(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(graphc.RenderError, match="not found") as info:
        graphc.render(_f, np.ones(2), path=tmp_path / "f.pdf")
    assert "apt-get install graphviz" in str(info.value)
    assert not (tmp_path / "f.pdf").exists()


def test_render_unwritable_path(tmp_path):
    (tmp_path / "blocker").write_text("")
    with pytest.raises(graphc.RenderError, match="cannot write"):
        graphc.render(_f, np.ones(2), path=tmp_path / "blocker" / "f.dot")


@pytest.mark.skipif(shutil.which("dot") is None, reason="needs Graphviz's dot")
def test_render_with_real_dot_writes_only_the_target(tmp_path):
    path = graphc.render(_f, np.ones(2), path=tmp_path / "f.svg")
    assert path.read_text().lstrip().startswith(("<?xml", "<svg"))
    assert [p.name for p in tmp_path.iterdir()] == ["f.svg"]


# --- argument structure changes re-trace ---------------------------------------------------
def test_argument_structure_change_retraces():
    calls = []

    @graphc.compile
    def f(p):
        calls.append(1)
        leaves = p.values() if isinstance(p, dict) else p
        return sum(np.sum(v) for v in leaves)

    assert f({"a": np.ones(2), "b": np.ones(3)}) == 5.0
    assert f({"a": np.ones(2)}) == 2.0                          # a key less
    assert f({"b": np.ones(3), "a": np.ones(2)}) == 5.0          # other key order
    assert f([np.ones(2), np.ones(2), np.ones(2)]) == 6.0        # a list instead
    assert f((np.ones(1),)) == 1.0                               # a tuple
    assert len(calls) == 5
    assert f({"a": np.ones(2)}) == 2.0 and len(calls) == 5       # cached again
    df = graphc.grad(lambda p: sum(np.sum(v * v) for v in p.values()))
    assert df({"w": np.ones(2)})["w"].tolist() == [2.0, 2.0]
    assert sorted(df({"w": np.ones(2), "u": np.ones(1)})) == ["u", "w"]


def test_wrong_call_is_a_signature_error_naming_the_call():
    cf = graphc.compile(lambda x, y=1.0: x * y)
    with pytest.raises(graphc.SignatureError, match="unexpected keyword|got an unexpected") as info:
        cf(1.0, z=2.0)
    assert f"{__file__}:" in str(info.value)
    with pytest.raises(TypeError):
        cf()
    assert cf(2.0) == 2.0


def test_not_callable():
    with pytest.raises(graphc.SignatureError, match="callable"):
        graphc.grad(3.0)


# --- check_finite -------------------------------------------------------------------------
def test_check_finite_off_is_the_plain_compiled_class():
    # The default path pays nothing for the option: no extra branch per call.
    assert type(graphc.compile(_f)) is graphc.Compiled
    assert type(graphc.grad(_f)) is graphc.Compiled
    assert type(graphc.compile(check_finite=True)(_f)) is not graphc.Compiled
    assert isinstance(graphc.value_and_grad(_f, check_finite=True), graphc.Compiled)


def test_check_finite_names_the_first_bad_node():
    def softmax(x):
        e = np.exp(x)
        total = e.sum()
        return e / total
    checked = graphc.compile(softmax, check_finite=True)
    x = np.array([1.0, 2.0])
    np.testing.assert_array_equal(checked(x), graphc.compile(softmax)(x))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        with pytest.raises(graphc.NonFiniteError) as info:
            checked(np.array([1.0, 1000.0]))
    err = info.value
    assert err.node == "e" and err.op == "exp" and isinstance(err, ValueError)
    line = softmax.__code__.co_firstlineno + 1
    assert err.where == f"{__file__}:{line}"
    msg = str(err)
    assert "e = np.exp(x)" in msg and "inf" in msg and "1000" in msg and "stable" in msg


def test_check_finite_gradient_and_python_floats():
    def f(a, b):
        q = a / b
        return q * q
    vg = graphc.value_and_grad(f, argnums=(0, 1), check_finite=True)
    value, grads = vg(1.0, 2.0)
    assert value == 0.25 and np.allclose(grads, (0.5, -0.25))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        with pytest.raises(graphc.NonFiniteError) as info:
            vg(1.0, 0.0)          # Python floats: not ZeroDivisionError
    assert info.value.node == "q" and info.value.op == "div"

    def g(w):
        r = np.sqrt(w)
        return r.sum()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        with pytest.raises(graphc.NonFiniteError) as info:
            graphc.grad(g, check_finite=True)(np.array([0.0, 4.0]))
    assert info.value.node == "d_w" and "backward" in str(info.value)
    assert info.value.where.endswith(f":{g.__code__.co_firstlineno + 1}")


def test_check_finite_input_and_masked_intermediates():
    f = graphc.compile(lambda p: p["w"] * 2.0, check_finite=True)
    with pytest.raises(graphc.NonFiniteError) as info:
        f({"w": np.array([1.0, np.inf])})
    assert info.value.op == "input" and info.value.node == "p['w']" and "inf" in str(info.value)
    # NaN in a branch np.where discards never reaches a result: not an error.
    safe_log = graphc.compile(lambda x: np.where(x > 0, np.log(x), 0.0), check_finite=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        out = safe_log(np.array([-1.0, 0.0, np.e]))
    np.testing.assert_allclose(out, [0.0, 0.0, 1.0])
    # Unchecked, NaN/Inf propagate as in NumPy.
    assert np.isnan(graphc.compile(lambda x: x * 2.0)(np.nan))


def test_check_finite_float32_overflow():
    def f(x):
        y = x * x
        return y.sum()
    x = np.array([3e19, 1.0], np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        with pytest.raises(graphc.NonFiniteError) as info:
            graphc.compile(f, check_finite=True)(x)
    assert info.value.node == "y" and "f32[2]" in str(info.value)


def test_check_finite_inside_another_transform_is_inlined():
    inner = graphc.compile(lambda x: np.exp(x), check_finite=True)
    df = graphc.grad(lambda x: inner(x).sum())
    np.testing.assert_allclose(df(np.zeros(2)), [1.0, 1.0])


def test_interpreter_matches_generated_code():
    from graphc.interpret import evaluate

    def f(x, w):
        h = np.tanh(x @ w)
        return (h * h).mean()
    rng = np.random.default_rng(0)
    x, w = rng.normal(size=(4, 3)), rng.normal(size=(3, 2))
    vg = graphc.value_and_grad(f, argnums=(0, 1))
    g = vg.graph(x, w)
    values = evaluate(g, [x, w])
    value, (dx, dw) = vg(x, w)
    np.testing.assert_allclose(values[g.outputs[0]], value, rtol=1e-12)
    np.testing.assert_allclose(values[g.outputs[1]], dx, rtol=1e-12)
    np.testing.assert_allclose(values[g.outputs[2]], dw, rtol=1e-12)


def test_cli_source_output_needs_overwrite_to_replace(tmp_path, capsys):
    from graphc.cli import main
    target = f"{ROOT / 'examples' / 'autodiff_trace.py'}:f"
    out = tmp_path / "f.py"
    assert main(["source", target, "-o", str(out)]) == 0
    first = out.read_text()
    assert main(["source", target, "--grad", "-o", str(out)]) == 1
    assert "overwrite" in capsys.readouterr().err and out.read_text() == first
    assert main(["source", target, "--grad", "-o", str(out), "--overwrite"]) == 0
    assert "def f_grad(" in out.read_text()


def test_escaped_tracer_in_every_use_says_escaped():
    kept = []

    def f(x):
        kept.append(x * 2.0)
        return x.sum()
    graphc.trace(f, np.ones(2))
    leaked = kept[0]
    uses = [lambda: bool(leaked), lambda: float(leaked), lambda: np.asarray(leaked),
            lambda: leaked + 1.0, lambda: np.exp(leaked),
            lambda: graphc.compile(lambda v: v * 2.0)(leaked),
            lambda: graphc.trace(lambda y: y * leaked, np.ones(2))]
    for use in uses:
        with pytest.raises(graphc.EscapedTracerError, match="escaped its trace") as info:
            use()
        assert f"{__file__}:" in str(info.value)
        assert "f64[2]" in str(info.value) and "Tracer" not in str(info.value)


def test_tracer_of_a_failed_trace_counts_as_escaped():
    kept = []

    def f(x):
        kept.append(x)
        raise KeyError("boom")
    with pytest.raises(KeyError):
        graphc.trace(f, np.ones(2))
    with pytest.raises(graphc.EscapedTracerError, match="escaped"):
        np.sin(kept[0])
