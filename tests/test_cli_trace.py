"""`graphc trace` with values, FILE.py without :FUNC, `demo --help`, and the README tour run twice."""
import pathlib
import re

import pytest

from graphc import cli
from graphc.demo import DEMO_STEPS

from functions import lecture_grad_closed_form

ROOT = pathlib.Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "autodiff_trace.py"


def _value(out, name):
    line = next(ln for ln in out.splitlines() if ln.strip().startswith(f"{name} ="))
    return float(line.rsplit("= ", 1)[1])


def test_trace_values_grad(capsys):
    assert cli.main(["trace", str(EXAMPLE), "--grad", "--argnums", "0,1", "--values"]) == 0
    out = capsys.readouterr().out
    assert "# seed: dz6/dz6" in out and "d_z2 = d_z5" in out
    want = lecture_grad_closed_form(1.5, 0.5)
    assert _value(out, "d_w1") == pytest.approx(want[0], rel=1e-12)
    assert _value(out, "d_w2") == pytest.approx(want[1], rel=1e-12)
    assert _value(out, "z1") == 3.0


def test_trace_values_forward(capsys):
    assert cli.main(["trace", f"{EXAMPLE}:f", "--values"]) == 0
    out = capsys.readouterr().out
    assert re.search(r"w1 +# f64\[\]  argument +\= 1\.5", out)
    assert "# grad of" not in out


def test_trace_grad_without_values_prints_the_lecture_layout(capsys):
    assert cli.main(["trace", f"{EXAMPLE}:f", "--grad"]) == 0
    out = capsys.readouterr().out
    assert "d_z5 = d_z6 * z4" in out and " = 1.5" not in out


def test_file_alone_names_its_one_example_function(capsys):
    assert cli.main(["trace", str(ROOT / "examples" / "lenet.py")]) == 0
    assert capsys.readouterr().out.startswith("loss(")


@pytest.mark.parametrize("name, needle", [
    ("activations.py", "has 2 @graphc.example functions; name one: "),
])
def test_file_alone_with_several_examples_lists_them(name, needle, capsys):
    assert cli.main(["trace", str(ROOT / "examples" / name)]) == 2
    err = capsys.readouterr().err
    assert needle in err and "activations.py:deep_loss" in err


def test_file_alone_without_examples(tmp_path, capsys):
    path = tmp_path / "plain.py"
    path.write_text("def f(x):\n    return x\n\ndef g(x):\n    return x\n")
    assert cli.main(["trace", str(path)]) == 2
    err = capsys.readouterr().err
    assert "no @graphc.example function" in err and f"{path}:f" in err and f"{path}:g" in err


def test_demo_help_lists_every_step(capsys):
    with pytest.raises(SystemExit):
        cli.build_parser().parse_args(["demo", "--help"])
    out = capsys.readouterr().out
    for i, step in enumerate(DEMO_STEPS, 1):
        title = step.__doc__.strip().splitlines()[0]
        assert f"{i}. {title}" in out


def test_readme_synopsis_lists_trace_flags():
    text = (ROOT / "README.md").read_text()
    line = next(ln for ln in text.splitlines() if ln.startswith("graphc trace "))
    for flag in ("--grad", "--argnums", "--values", "--cost", "FILE.py[:FUNC]"):
        assert flag in line


def test_readme_tour_runs_twice(tmp_path, monkeypatch, capsys):
    # A fresh clone's second run used to stop at graphc.export (the file it wrote the first time).
    from test_readme import BLOCKS, _run
    _run(BLOCKS[0], "tour", tmp_path, monkeypatch)
    first = (tmp_path / "f_grad.py").read_text()
    _run(BLOCKS[0], "tour", tmp_path, monkeypatch)
    assert (tmp_path / "f_grad.py").read_text() == first


@pytest.mark.slow
def test_demo_shows_the_lecture_table(tmp_path, capsys):
    assert cli.main(["demo", "--out", str(tmp_path / "out")]) == 0
    out = capsys.readouterr().out
    step = out.split("=== 2/")[1].split("=== 3/")[0]
    assert "z1 = w1 / w2" in step and "= 3.0" in step
    assert "# seed: dz6/dz6" in step and "d_z2 = d_z5" in step and "= 154.31901669702975" in step
