"""Issue 12, "Security and file writes": safe atomic writes, demo, DOT escaping, render options, paths.

The claims these tests hold are listed in docs/threat-model.md.
"""
import os
import pathlib
import re
import shutil
import subprocess
import threading
import xml.etree.ElementTree as ET

import numpy as np
import pytest

import graphc
from graphc import demo
from graphc.cli import main
from functions import lecture

HAVE_DOT = shutil.which("dot") is not None
needs_dot = pytest.mark.skipif(not HAVE_DOT, reason="Graphviz's dot program is not installed")
needs_fifo = pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs on this platform")
needs_symlink = pytest.mark.skipif(os.name == "nt", reason="symlinks need privileges on Windows")
SVG = "{http://www.w3.org/2000/svg}"


def _sq(x):
    return np.sum(x ** 2)


def _export(path, **kw):
    return graphc.export(graphc.grad(_sq), np.ones(3), path=path, **kw)


def _temp_files(folder):
    """Anything in ``folder`` that looks like a temporary file (old or new naming)."""
    return [p.name for p in pathlib.Path(folder).iterdir() if "tmp" in p.name]


# --- atomic, exclusive writes ----------------------------------------------------------
@needs_symlink
def test_export_never_writes_through_a_link_planted_at_a_temporary_name(tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_text("precious\n")
    out = tmp_path / "out"
    out.mkdir()
    # The old temporary name was predictable: .NAME.graphc-tmp-PID-THREAD.  Plant a
    # link there (and at every other name graphc used) pointing at the victim.
    planted = out / f".f.py.graphc-tmp-{os.getpid()}-{threading.get_ident()}"
    planted.symlink_to(victim)
    path = _export(out / "f.py")
    assert victim.read_text() == "precious\n"
    assert "def _sq_grad" in path.read_text() or "def " in path.read_text()
    assert planted.is_symlink()                   # left alone, not followed
    assert sorted(p.name for p in out.iterdir()) == sorted(["f.py", planted.name])


@needs_symlink
@pytest.mark.parametrize("overwrite", [False, True])
def test_export_refuses_a_symlink_at_the_target(tmp_path, overwrite):
    victim = tmp_path / "victim.py"
    victim.write_text("precious\n")
    link = tmp_path / "f.py"
    link.symlink_to(victim)
    with pytest.raises(graphc.ExportError, match="symbolic link") as info:
        _export(link, overwrite=overwrite)
    assert "remove the link" in str(info.value)
    assert link.is_symlink() and os.readlink(link) == str(victim)
    assert victim.read_text() == "precious\n"
    assert _temp_files(tmp_path) == []


@needs_fifo
def test_export_overwrite_never_replaces_a_fifo(tmp_path):
    fifo = tmp_path / "f.py"
    os.mkfifo(fifo)
    with pytest.raises(graphc.ExportError, match="FIFO") as info:
        _export(fifo, overwrite=True)
    assert "not a regular file" in str(info.value)
    assert fifo.is_fifo()
    assert _temp_files(tmp_path) == []


@needs_fifo
@needs_symlink
def test_render_never_replaces_a_fifo_or_a_link(tmp_path):
    fifo = tmp_path / "f.dot"
    os.mkfifo(fifo)
    with pytest.raises(graphc.GraphcError, match="FIFO"):
        graphc.render(lecture, 1.5, 0.5, path=fifo)
    assert fifo.is_fifo()
    victim = tmp_path / "victim.dot"
    victim.write_text("precious\n")
    link = tmp_path / "g.dot"
    link.symlink_to(victim)
    with pytest.raises(graphc.GraphcError, match="symbolic link"):
        graphc.render(lecture, 1.5, 0.5, path=link)
    assert link.is_symlink() and victim.read_text() == "precious\n"
    assert _temp_files(tmp_path) == []


def test_export_overwrite_never_replaces_a_directory(tmp_path):
    folder = tmp_path / "f.py"
    folder.mkdir()
    with pytest.raises(graphc.ExportError, match="directory"):
        _export(folder, overwrite=True)
    assert folder.is_dir()


def test_a_non_os_error_leaves_no_temporary_file(tmp_path, monkeypatch):
    path = tmp_path / "f.py"
    path.write_text("old\n")

    class Boom(Exception):
        pass

    def boom(*args, **kwargs):
        raise Boom("interrupted")

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(Boom):
        _export(path, overwrite=True)
    monkeypatch.undo()
    assert path.read_text() == "old\n"             # whole or not at all
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f.py"]


def test_names_near_the_file_system_limit(tmp_path):
    try:
        name_max = os.pathconf(tmp_path, "PC_NAME_MAX")
    except (AttributeError, OSError, ValueError):
        name_max = 255
    name_max = min(name_max, 255)
    path = tmp_path / ("f" * (name_max - 3) + ".py")
    assert len(path.name) == name_max
    assert _export(path).read_text().startswith("#") or path.stat().st_size > 0
    assert _export(path, overwrite=True) == path
    dot = tmp_path / ("g" * (name_max - 4) + ".dot")
    assert graphc.render(lecture, 1.5, 0.5, path=dot).read_text().lstrip().startswith("digraph")
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([path.name, dot.name])


def test_overwrite_false_lets_exactly_one_of_eight_threads_win(tmp_path):
    path = tmp_path / "f.py"
    n = 8
    barrier = threading.Barrier(n)
    results = [None] * n

    def make(k):
        # a distinct function per thread, so each one traces (a wide race window)
        def f(x):
            return np.sum(x ** 2) * float(k + 1)
        f.__name__ = f"f{k}"
        return f

    def worker(k):
        fn = graphc.grad(make(k))
        barrier.wait()
        try:
            graphc.export(fn, np.ones(3), path=path)
            results[k] = "ok"
        except graphc.ExportError as e:
            results[k] = str(e)

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    winners = [k for k, r in enumerate(results) if r == "ok"]
    assert len(winners) == 1, results
    assert all("will not overwrite" in r for r in results if r != "ok")
    assert f"def f{winners[0]}_grad" in path.read_text()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f.py"]


def test_write_atomic_threads_directly(tmp_path):
    from graphc._files import write_atomic
    path = tmp_path / "x.txt"
    for _ in range(5):
        if path.exists():
            path.unlink()
        barrier = threading.Barrier(8)
        wins = []

        def worker(k):
            barrier.wait()
            try:
                write_atomic(path, f"{k}\n", what="test")
                wins.append(k)
            except graphc.ExportError:
                pass

        threads = [threading.Thread(target=worker, args=(k,)) for k in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert len(wins) == 1
        assert path.read_text() == f"{wins[0]}\n"
        assert sorted(p.name for p in tmp_path.iterdir()) == ["x.txt"]


def test_export_keeps_the_usual_file_mode(tmp_path):
    path = _export(tmp_path / "f.py")
    umask = os.umask(0)
    os.umask(umask)
    assert (path.stat().st_mode & 0o777) == (0o666 & ~umask)


# --- the CLI's -o ------------------------------------------------------------------------
@pytest.fixture
def user_file(tmp_path):
    path = tmp_path / "model.py"
    path.write_text("import numpy as np\nimport graphc\n\n\n@graphc.example(1.5)\n"
                    "def f(x):\n    return np.sin(x) * x\n")
    return f"{path}:f"


@needs_fifo
def test_cli_output_overwrite_refuses_a_fifo(tmp_path, user_file, capsys):
    fifo = tmp_path / "out.py"
    os.mkfifo(fifo)
    assert main(["source", user_file, "--grad", "-o", str(fifo), "--overwrite"]) != 0
    assert "FIFO" in capsys.readouterr().err
    assert fifo.is_fifo()


@needs_fifo
def test_cli_render_output_refuses_a_fifo(tmp_path, user_file, capsys):
    fifo = tmp_path / "out.dot"
    os.mkfifo(fifo)
    assert main(["render", user_file, "-o", str(fifo)]) != 0
    assert "FIFO" in capsys.readouterr().err
    assert fifo.is_fifo()


# --- graphc demo -------------------------------------------------------------------------
@pytest.fixture
def short_demo(monkeypatch):
    """Only the demo steps that write files and are quick."""
    monkeypatch.setattr(demo, "DEMO_STEPS", [demo.step_example, demo.step_export, demo.step_images])


def test_demo_refuses_a_file_it_did_not_write_before_writing_anything(tmp_path, capsys,
                                                                      short_demo):
    out = tmp_path / "demo"
    out.mkdir()
    (out / "f_grad.py").write_text("# my own f_grad\n")
    assert main(["demo", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "not written by graphc demo" in err and "--overwrite" in err and "--out" in err
    assert (out / "f_grad.py").read_text() == "# my own f_grad\n"
    assert sorted(p.name for p in out.iterdir()) == ["f_grad.py"]


@needs_symlink
def test_demo_never_follows_or_replaces_a_link(tmp_path, capsys, short_demo):
    victim = tmp_path / "victim.py"
    victim.write_text("precious\n")
    out = tmp_path / "demo"
    out.mkdir()
    (out / "f_grad.py").symlink_to(victim)
    for extra in ([], ["--overwrite"]):
        assert main(["demo", "--out", str(out), *extra]) == 2
        assert "not written by graphc demo" in capsys.readouterr().err
        assert (out / "f_grad.py").is_symlink() and victim.read_text() == "precious\n"


@pytest.mark.slow
def test_demo_rewrites_its_own_files_and_overwrite_replaces_foreign_ones(tmp_path, capsys,
                                                                         short_demo):
    out = tmp_path / "demo"
    assert main(["demo", "--out", str(out)]) == 0
    manifest = (out / ".graphc-demo-files").read_text().split()
    assert "f_grad.py" in manifest and "autodiff_trace.py" in manifest
    assert main(["demo", "--out", str(out)]) == 0      # its own files: fine
    image = next(n for n in manifest if n.startswith("f_forward"))
    (out / ".graphc-demo-files").unlink()              # now they look foreign
    (out / "f_grad.py").write_text("# mine\n")
    assert main(["demo", "--out", str(out)]) == 2
    assert (out / "f_grad.py").read_text() == "# mine\n"
    capsys.readouterr()
    assert main(["demo", "--out", str(out), "--overwrite"]) == 0
    assert "def f_grad" in (out / "f_grad.py").read_text()
    assert (out / image).stat().st_size > 0


# --- DOT: escaping and clusters ----------------------------------------------------------
def _scoped(names):
    def f(x):
        h = x
        for name in names:
            with graphc.scope(name):
                h = np.tanh(h) * 2.0
        return np.sum(h)
    return f


@needs_dot
def test_hostile_function_and_scope_names_give_valid_dot(tmp_path):
    f = _scoped(["a\0b", "<x>-><y>", 'q"\\', "line\nbreak"])
    f.__name__ = f.__qualname__ = "<a>-><b>"
    for backward in (False, True):
        for collapse in (None, True):
            path = graphc.render(f, np.ones(3), path=tmp_path / f"h{backward}{collapse}.dot",
                                 backward=backward, collapse=collapse)
            text = path.read_text()
            assert "\0" not in text and "␀" in text      # NUL shown, visibly
            proc = subprocess.run(["dot", "-Tsvg", str(path)], capture_output=True)
            assert proc.returncode == 0 and not proc.stderr, proc.stderr.decode()


def test_hostile_names_in_dot_text_without_dot(tmp_path):
    f = _scoped(["a\0b"])
    f.__name__ = f.__qualname__ = "<a>-><b>"
    text = graphc.render(f, np.ones(3), path=tmp_path / "h.dot").read_text()
    assert "\0" not in text and "a␀b" in text
    assert text.startswith('digraph "') and "<a>" not in text


def _cluster_titles(svg_path):
    root = ET.parse(svg_path).getroot()
    return [g.find(SVG + "title").text for g in root.iter(SVG + "g")
            if g.get("class") == "cluster"]


@needs_dot
def test_similar_scope_names_stay_distinct_clusters(tmp_path):
    f = _scoped(["layer 1", "layer_1", "layer.1"])
    path = graphc.render(f, np.ones(3), path=tmp_path / "s.svg", legend=False)
    titles = _cluster_titles(path)
    assert len(titles) == 3 and len(set(titles)) == 3, titles
    labels = [t.text for t in ET.parse(path).getroot().iter(SVG + "text")]
    for name in ("layer 1", "layer_1", "layer.1"):
        assert name in labels
    # collapsed: three boxes, not one
    text = graphc.render(f, np.ones(3), path=tmp_path / "c.dot", collapse=True).read_text()
    assert len(set(re.findall(r"scope__layer_1\w*", text))) == 3


# --- render options ----------------------------------------------------------------------
@pytest.mark.parametrize("option, value, valid", [
    ("collapse", 3, "scope name"),
    ("rankdir", "XX", "'LR'"),
    ("legend", "yes", "True or False"),
    ("flops", 2, "True or False"),
])
def test_bad_drawing_option_values_are_option_errors(tmp_path, option, value, valid):
    with pytest.raises(graphc.OptionError) as info:
        graphc.render(lecture, 1.5, 0.5, path=tmp_path / "f.dot", **{option: value})
    assert f"{option}={value!r}" in str(info.value) and valid in str(info.value)
    assert not (tmp_path / "f.dot").exists()


def test_good_drawing_options_still_work(tmp_path):
    for rankdir in ("TB", "LR", "BT", "RL"):
        path = graphc.render(lecture, 1.5, 0.5, path=tmp_path / f"{rankdir}.dot",
                             rankdir=rankdir, legend=False, flops=True, collapse=False)
        assert f"rankdir={rankdir}" in path.read_text()


def test_unknown_keyword_is_an_option_error_listing_the_drawing_options(tmp_path):
    with pytest.raises(graphc.OptionError) as info:
        graphc.render(lecture, 1.5, 0.5, path=tmp_path / "f.dot", title="x")
    text = str(info.value)
    assert "title=" in text and "has no parameter 'title'" in text
    for option in ("collapse=", "rankdir=", "legend=", "flops=", "dpi=", "size=", "values="):
        assert option in text
    g = graphc.trace(lecture, 1.5, 0.5)
    with pytest.raises(graphc.OptionError, match="title="):
        graphc.render(g, path=tmp_path / "g.dot", title="x")
    with pytest.raises(graphc.OptionError, match="title="):
        g.render(tmp_path / "g.dot", title="x")


def test_user_keyword_arguments_still_reach_the_function(tmp_path):
    def f(x, scale=1.0):
        return np.sum(x * scale)

    path = graphc.render(f, np.ones(2), path=tmp_path / "f.dot", scale=3.0)
    assert "3" in path.read_text()

    def g(x, **kw):
        assert "dpi" not in kw      # a drawing option never reaches the function
        return np.sum(x * kw.get("scale", 1.0))

    text = graphc.render(g, np.ones(2), path=tmp_path / "g.dot", dpi=300.0, scale=5.0).read_text()
    assert "dpi=300" in text and "5" in text


# --- None / bytes / NUL paths ------------------------------------------------------------
@pytest.mark.parametrize("bad, kind, words", [
    (None, TypeError, "not a file name"),
    (b"x.py", TypeError, "bytes"),
    (42, TypeError, "not a file name"),
    ("a\0b.py", ValueError, "NUL"),
])
def test_bad_paths_are_clear_errors(tmp_path, monkeypatch, bad, kind, words):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(graphc.GraphcError) as info:
        _export(bad)
    assert isinstance(info.value, kind) and words in str(info.value) and "path=" in str(info.value)
    target = bad if not isinstance(bad, str) else bad.replace(".py", ".dot")
    if bad is None:     # render(path=None) is the inline drawing (API.md section 11)
        assert graphc.render(lecture, 1.5, 0.5, path=None).source.startswith("digraph")
    else:
        with pytest.raises(graphc.GraphcError) as info:
            graphc.render(lecture, 1.5, 0.5, path=target)
        assert isinstance(info.value, kind) and words in str(info.value)
    assert list(tmp_path.iterdir()) == []


# --- render and report never replace a file graphc did not write (API §4) ---------------------
_FORMATS = ["dot", "gv", pytest.param("svg", marks=needs_dot), pytest.param("png", marks=needs_dot),
            pytest.param("pdf", marks=needs_dot)]


@pytest.mark.parametrize("fmt", _FORMATS)
def test_render_keeps_a_file_it_did_not_write(tmp_path, fmt):
    """render replaced any regular file (Drawing.save's overwrite defaulted to True)."""
    path = tmp_path / f"mine.{fmt}"
    path.write_text("my own drawing")
    with pytest.raises(graphc.RenderPathError, match="will not overwrite") as e:
        graphc.render(_sq, np.ones(3), path=path)
    assert isinstance(e.value, ValueError) and "test_trust_files.py:" in str(e.value)
    with pytest.raises(graphc.RenderPathError):
        graphc.trace(_sq, np.ones(3)).render(path)
    assert path.read_text() == "my own drawing" and _temp_files(tmp_path) == []
    assert graphc.render(_sq, np.ones(3), path=path, overwrite=True) == path
    assert path.read_bytes() != b"my own drawing"


@pytest.mark.parametrize("fmt", _FORMATS)
def test_render_replaces_its_own_drawing(tmp_path, fmt):
    """Drawing a function again to the same path needs no overwrite=True: the file carries
    graphc's mark (graphc/file_marks.py), and the marked file is still a valid drawing."""
    from graphc.file_marks import graphc_wrote
    path = tmp_path / f"f.{fmt}"
    graphc.render(_sq, np.ones(3), path=path)
    assert graphc_wrote(path, fmt)
    graphc.render(lambda x: np.sum(np.exp(x)), np.ones(3), path=path)     # a new drawing
    graphc.trace(_sq, np.ones(3)).render(path)
    data = path.read_bytes()
    if fmt == "png":           # every chunk's CRC holds: the tEXt chunk is well formed
        import struct
        import zlib
        i, kinds = 8, []
        while i < len(data):
            n, kind = struct.unpack(">I", data[i:i + 4])[0], data[i + 4:i + 8]
            crc = struct.unpack(">I", data[i + 8 + n:i + 12 + n])[0]
            assert zlib.crc32(data[i + 4:i + 8 + n]) & 0xFFFFFFFF == crc, kind
            kinds.append(kind)
            i += 12 + n
        assert kinds[:2] == [b"IHDR", b"tEXt"] and kinds[-1] == b"IEND"
    if fmt == "pdf":           # the mark is a comment after the last %%EOF
        assert data.rstrip().splitlines()[-2:] == [b"%%EOF", b"% Generated by graphc"]
    if fmt == "svg":
        ET.fromstring(data)    # still well-formed XML


def test_report_keeps_a_file_it_did_not_write(tmp_path):
    path = tmp_path / "page.html"
    path.write_text("<p>mine</p>")
    with pytest.raises(graphc.RenderPathError, match="will not overwrite"):
        graphc.report(_sq, np.ones(3), path=path, proof=False)
    assert path.read_text() == "<p>mine</p>"
    graphc.report(_sq, np.ones(3), path=path, proof=False, overwrite=True)
    graphc.report(_sq, np.ones(3), path=path, proof=False)       # its own page: replaced
    assert path.read_text().splitlines()[1] == "<!-- Generated by graphc -->"


def test_cli_render_and_report_overwrite(tmp_path, capsys):
    src = tmp_path / "m.py"
    src.write_text("import numpy as np\n\ndef f(x):\n    return np.sum(np.sin(x))\n")
    for cmd, out in (("render", tmp_path / "u.dot"), ("report", tmp_path / "u.html")):
        out.write_text("mine")
        argv = [cmd, f"{src}:f", "--arg", "x=f64[3]", "-o", str(out)]
        argv += ["--no-proof"] if cmd == "report" else []
        assert main(argv) == 1 and out.read_text() == "mine"
        assert "--overwrite" in capsys.readouterr().err
        assert main(argv + ["--overwrite"]) == 0 and out.read_text() != "mine"
        assert main(argv) == 0                              # graphc's own file now
