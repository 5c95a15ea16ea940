"""Every ```python block in README.md runs, and the tour's exported module stands alone."""
import ast
import importlib.util
import pathlib
import re

import numpy as np
import pytest

from functions import lecture_grad_closed_form
import _libm

ROOT = pathlib.Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
BLOCKS = re.findall(r"^```python\n(.*?)^```", README.read_text(), flags=re.S | re.M)


def _run(code, name, tmp_path, monkeypatch):
    """Execute a README block as a script would run, with ``tmp_path`` as the cwd."""
    monkeypatch.chdir(tmp_path)
    path = tmp_path / f"{name}.py"
    path.write_text(code)  # a real file, so graphc can show the source lines it traces
    namespace = {"__name__": "__main__", "__file__": str(path)}
    exec(compile(code, str(path), "exec"), namespace)
    return namespace


def test_readme_has_python_blocks():
    assert len(BLOCKS) >= 2
    assert "graphc.export(df, 1.5, 0.5, path=\"f_grad.py\", overwrite=True)" in BLOCKS[0]


@pytest.mark.parametrize("index", range(len(BLOCKS)))
def test_readme_block_runs(index, tmp_path, monkeypatch, capsys):
    _run(BLOCKS[index], f"readme_block_{index}", tmp_path, monkeypatch)
    assert capsys.readouterr().out.strip()  # every block shows something


def test_tour_exports_a_standalone_module(tmp_path, monkeypatch, capsys):
    ns = _run(BLOCKS[0], "tour", tmp_path, monkeypatch)
    out = capsys.readouterr().out
    assert "z1 = w1 / w2" in out and "def f_grad(w1, w2):" in out and "# grad of:" in out

    path = tmp_path / "f_grad.py"
    assert path.is_file()
    tree = ast.parse(path.read_text())
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            imported.add((node.module or "").split(".")[0])
    assert imported == {"numpy"} | ({"math"} if _libm.LECTURE else set())   # tests/_libm.py

    # Imported on its own, in a fresh module: the same gradient as graphc's.
    spec = importlib.util.spec_from_file_location("_readme_f_grad", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert "graphc" not in vars(module)
    got = module.f_grad(1.5, 0.5)
    want = ns["df"](1.5, 0.5)
    assert len(got) == 2
    np.testing.assert_allclose(got, want, rtol=0, atol=0)
    # ... and the closed form of the lecture's example.
    np.testing.assert_allclose(got, lecture_grad_closed_form(1.5, 0.5), rtol=1e-12)


def test_readme_quick_start_is_make_demo_and_make_test():
    text = README.read_text()
    quick = text.split("## Quick start", 1)[1].split("##", 1)[0]
    commands = re.findall(r"^```\n(.*?)^```", quick, flags=re.S | re.M)[0].split()
    assert commands == ["make", "demo", "make", "test"]
