"""The documentation stays true: docs/ops.md matches the primitive registry, the user guide's
snippets run and print what the guide says, and every link and picture in the docs exists."""
import pathlib
import re
import subprocess
import sys

import pytest

from graphc.primitive import REGISTRY

ROOT = pathlib.Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
GUIDE = DOCS / "guide.md"
REGENERATE = "python tools/make_op_reference.py"


def fences(text):
    """``[(language, code, expected output or None)]``: each ```python block of a Markdown
    text, with the ```text block that directly follows it (blank lines between), if any."""
    blocks = [(m.group(1), m.group(2), m.start(), m.end())
              for m in re.finditer(r"^```(\w*)\n(.*?)^```[ \t]*$", text, flags=re.S | re.M)]
    out = []
    for i, (lang, code, _, end) in enumerate(blocks):
        if lang != "python":
            continue
        expected = None
        if i + 1 < len(blocks) and blocks[i + 1][0] == "text" \
                and not text[end:blocks[i + 1][2]].strip():
            expected = blocks[i + 1][1]
        out.append((lang, code, expected))
    return out


def run_snippet(code, tmp_path, monkeypatch, name="guide"):
    """Execute ``code`` as the script ``tmp_path/<name>.py`` would run; return what it printed,
    with the folder left out of file paths (graphc's messages name the user's file)."""
    import contextlib
    import io
    monkeypatch.chdir(tmp_path)
    path = tmp_path / f"{name}.py"
    path.write_text(code)
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        exec(compile(code, str(path), "exec"), {"__name__": "__main__", "__file__": str(path)})
    return buf.getvalue().replace(str(tmp_path) + "/", "")


# --- the op reference ------------------------------------------------------------------
def _make_op_reference():
    sys.path.insert(0, str(ROOT / "tools"))
    try:
        import make_op_reference
    finally:
        sys.path.remove(str(ROOT / "tools"))
    return make_op_reference


def test_op_reference_is_up_to_date():
    text = _make_op_reference().render()
    ops = DOCS / "ops.md"
    assert ops.is_file(), f"docs/ops.md is missing: run `{REGENERATE}`"
    assert ops.read_text() == text, (
        f"docs/ops.md is stale (a primitive was added or changed): run `{REGENERATE}` "
        "and commit docs/ops.md")


def test_op_reference_lists_every_primitive():
    text = _make_op_reference().render()
    for name, prim in REGISTRY.items():
        row = re.search(rf"^\| `{re.escape(name)}` \|.*$", text, flags=re.M)
        assert row, name
        cells = [c.strip() for c in re.split(r"(?<!\\)\|", row.group(0))[1:-1]]
        assert len(cells) == 8, row.group(0)                    # no stray | in a cell
        assert cells[4] == ("yes" if prim.differentiable else "no")
        assert cells[5] == ("yes" if callable(prim.jvp) else "no")   # forward mode
        if isinstance(prim.numpy, str):
            assert cells[3] == "`" + prim.numpy.replace("|", "\\|") + "`"
    assert f"graphc has {len(REGISTRY)} primitives" in text


@pytest.mark.slow
def test_op_reference_check_mode(tmp_path):
    tool = ROOT / "tools" / "make_op_reference.py"
    stale = tmp_path / "ops.md"
    stale.write_text("# old\n")
    run = subprocess.run([sys.executable, str(tool), "--check", "--out", str(stale)],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 1 and REGENERATE in run.stderr
    run = subprocess.run([sys.executable, str(tool), "--out", str(stale)],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0 and stale.read_text() == _make_op_reference().render()


# --- the user guide ----------------------------------------------------------------------
SNIPPETS = fences(GUIDE.read_text()) if GUIDE.is_file() else []


def test_guide_has_snippets():
    assert len(SNIPPETS) >= 8
    assert sum(expected is not None for _, _, expected in SNIPPETS) >= 5


@pytest.mark.parametrize("index", range(len(SNIPPETS)))
def test_guide_snippet(index, tmp_path, monkeypatch):
    _, code, expected = SNIPPETS[index]
    printed = run_snippet(code, tmp_path, monkeypatch)
    assert printed.strip(), "every snippet shows something"
    if expected is not None:
        assert printed.rstrip() == expected.rstrip(), (
            f"docs/guide.md snippet {index} printed something else than the guide says:\n"
            + printed)


# --- links and pictures ------------------------------------------------------------------
PAGES = sorted(DOCS.glob("*.md")) + [ROOT / "README.md"]


@pytest.mark.parametrize("page", PAGES, ids=[p.name for p in PAGES])
def test_relative_links_resolve(page):
    text = re.sub(r"^```.*?^```", "", page.read_text(), flags=re.S | re.M)   # not in code
    for target in re.findall(r"\]\(([^)\s]+)\)", text):
        if re.match(r"[a-z]+:", target) or target.startswith("#"):
            continue
        path = (page.parent / target.split("#", 1)[0]).resolve()
        assert path.exists(), f"{page.name} links to {target}, which does not exist"


def test_doc_images_are_made_by_a_script():
    """Every picture the docs show is one tools/make_images.py writes."""
    tool = (ROOT / "tools" / "make_images.py").read_text()
    for page in PAGES:
        for target in re.findall(r"!\[[^\]]*\]\(([^)\s]+)\)", page.read_text()):
            name = pathlib.Path(target)
            assert f'"{name.stem}"' in tool or f'"{name.name}"' in tool, \
                f"{page.name} shows {target}, which tools/make_images.py does not make"
            assert (page.parent / target).is_file(), f"{target}: run python tools/make_images.py"
