"""examples/lecture.ipynb runs from top to bottom (nbclient) and shows what it says."""
import os
import pathlib
import re
import shutil

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
NOTEBOOK = ROOT / "examples" / "lecture.ipynb"


def _read():
    nbformat = pytest.importorskip("nbformat")
    return nbformat.read(NOTEBOOK, as_version=4)


def test_committed_notebook_has_no_outputs():
    nb = _read()
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, cell.source[:40]


def _text(cell, mime="text/plain"):
    parts = []
    for out in cell.outputs:
        if out.output_type == "stream":
            parts.append(out.text)
        elif "data" in out and mime in out.data:
            parts.append(out.data[mime])
    return "".join(parts)


@pytest.mark.slow
def test_lecture_notebook_executes(tmp_path, monkeypatch):
    nb = _read()
    nbclient = pytest.importorskip("nbclient")
    pytest.importorskip("ipykernel")
    if shutil.which("dot") is None:
        pytest.skip("the drawing needs Graphviz's dot")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(
        [str(ROOT)] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]))
    nbclient.NotebookClient(nb, timeout=300, kernel_name="python3",
                            resources={"metadata": {"path": str(tmp_path)}}).execute()
    code = [c for c in nb.cells if c.cell_type == "code"]
    errors = [o for c in code for o in c.outputs if o.output_type == "error"]
    assert not errors, errors
    forward, table_html, backward, rows, fd, svg, proof, source, compiled = (
        code[1], code[2], code[3], code[4], code[5], code[6], code[7], code[8], code[9])
    assert "z6 = z4 * z5" in _text(forward) and "= 39.459983186667834" in _text(forward)
    assert '<table class="graphc-trace">' in _text(table_html, "text/html")
    text = _text(backward)
    assert "# seed: dz6/dz6" in text and "d_z2 = d_z5" in text
    assert "d_w1 = d_z1 / w2" in text and "= 154.31901669702975" in text
    assert "('d_z5', '6.281718171540955')" in _text(rows)
    line = next(ln for ln in _text(fd).splitlines() if ln.startswith("d_z1"))
    got, want = (float(x) for x in re.findall(r"-?\d+\.\d+", line))
    assert abs(got - want) < 1e-5
    assert "<svg" in _text(svg, "image/svg+xml")
    assert (tmp_path / "lecture_backward.svg").is_file()
    assert ": OK" in _text(proof, "text/markdown")
    html = _text(source, "text/html")
    assert 'class="graphc-source"' in html and "d_z4" in html and "<span" in html
    assert "graphc.grad(f, argnums=(0, 1))" in _text(compiled, "text/html")
