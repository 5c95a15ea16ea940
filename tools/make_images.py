"""Regenerate the documentation images in docs/images/ (needs Graphviz's `dot`).

    python tools/make_images.py [--out DIR]

Writes, each as .svg and .png, at slide size (1920 pixels wide at 144 dpi):

* ``lecture_forward``: the lecture's f(w1, w2), forward graph
* ``lecture_backward``: the same with its backward graph beside it (d_w1, d_w2)
* ``lecture_values``: the same with each node's value at (1.5, 0.5)
* ``mlp_forward``, ``mlp_backward``: a 784-256-128-10 MLP's loss, forward only
  and forward + backward, traced on ``graphc.Spec`` placeholders (no data)
* ``lenet_forward``, ``lenet_backward``: examples/lenet.py's loss, every
  operation (reshapes and transposes drawn as edges)
* ``lenet_forward_collapsed``, ``lenet_collapsed``: the same, one box per
  ``graphc.scope`` layer, named by what the layer computes

``report-lecture.png`` and ``report-lenet.png``, screenshots of ``graphc.report``
pages in headless Chromium (when selenium and chromium are installed), and
``architecture-imports-after.svg``, the package's import graph by layer
(``tools/arch_report.py``; docs/architecture.md shows it), and, from the
examples (no Graphviz needed):

* ``filters.png``: examples/filters.py's image filters
* ``activations.svg``, ``gradients.svg``: examples/activations.py's curves and
  per-layer gradient norms

The traced functions live in files outside the graphc package (examples/ and
this file), so the drawings carry their variable names.
"""
from __future__ import annotations

import argparse
import pathlib
import shutil
import sys
import time

import numpy as np

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "examples"))

import graphc  # noqa: E402
from graphc import nn  # noqa: E402

import activations  # noqa: E402  (examples/activations.py)
import autodiff_trace  # noqa: E402  (examples/autodiff_trace.py)
import filters  # noqa: E402  (examples/filters.py)
import lenet  # noqa: E402  (examples/lenet.py)


def mlp_loss(params, x, y):
    """A 784-256-128-10 MLP: relu hidden layers, cross-entropy."""
    h1 = nn.relu(x @ params["W1"] + params["b1"])
    h2 = nn.relu(h1 @ params["W2"] + params["b2"])
    logits = h2 @ params["W3"] + params["b3"]
    return nn.cross_entropy(logits, y)


def mlp_specs(batch=64, sizes=(784, 256, 128, 10)):
    params = {}
    for i, (n_in, n_out) in enumerate(zip(sizes, sizes[1:]), 1):
        params[f"W{i}"] = graphc.Spec((n_in, n_out), "float32")
        params[f"b{i}"] = graphc.Spec((n_out,), "float32")
    return params, graphc.Spec((batch, sizes[0]), "float32"), graphc.Spec((batch,), "int64")


# Slide size: 13.33 x 7.5 inches (16:9) at 144 dpi is 1920 x 1080 pixels; tall drawings
# (a whole network, uncollapsed) keep the slide's width and take the height they need.
SLIDE = {"size": (13.33, 7.5), "dpi": 144}
TALL = {"dpi": 144}


def images():
    """``{stem: (what to draw, args, drawing options)}``."""
    f, w = autodiff_trace.f, (1.5, 0.5)
    mlp = graphc.value_and_grad(mlp_loss).graph(*mlp_specs())
    params = lenet.init_params(np.random.default_rng(0))
    x = graphc.Spec((64, 1, 8, 8))
    y = graphc.Spec((64,), "int64")
    cnn = graphc.value_and_grad(lenet.loss).graph(params, x, y)
    return {
        "lecture_forward": (f, w, {**SLIDE}),
        "lecture_backward": (f, w, {"backward": True, "argnums": (0, 1), **SLIDE}),
        "lecture_values": (f, w, {"backward": True, "argnums": (0, 1), "values": True, **SLIDE}),
        "mlp_forward": (mlp, (), {"backward": False, **SLIDE}),
        "mlp_backward": (mlp, (), {"backward": True, **SLIDE}),
        "lenet_forward": (cnn, (), {"backward": False, **TALL}),
        "lenet_backward": (cnn, (), {"backward": True, **TALL}),
        "lenet_forward_collapsed": (cnn, (), {"backward": False, "collapse": True, **SLIDE}),
        "lenet_collapsed": (cnn, (), {"backward": True, "collapse": True, **SLIDE}),
    }


# The pictures the examples draw themselves, by the file names they write.
EXAMPLE_IMAGES = {"filters.png": filters.main, "activations.svg": activations.main,
                  "gradients.svg": activations.main}


def example_images(out: pathlib.Path) -> None:
    """Run the examples that draw pictures, and copy their pictures into ``out``."""
    import contextlib
    import io
    import tempfile
    with tempfile.TemporaryDirectory() as tmp:
        for run in dict.fromkeys(EXAMPLE_IMAGES.values()):
            with contextlib.redirect_stdout(io.StringIO()):     # their tables are not wanted here
                run(tmp)
        for name in EXAMPLE_IMAGES:
            target = out / name
            shutil.copyfile(pathlib.Path(tmp) / name, target)
            print(f"wrote {target} ({target.stat().st_size / 1024:.0f} KiB)")


def import_graph_image(out: pathlib.Path) -> None:
    """The package's import graph, one band per layer (docs/architecture.md)."""
    import subprocess
    sys.path.insert(0, str(ROOT / "tools"))
    import arch_report
    target = out / "architecture-imports-after.svg"
    svg = subprocess.run(["dot", "-Tsvg"], input=arch_report.to_dot(arch_report.import_graph()),
                         capture_output=True, text=True, check=True).stdout
    target.write_text(svg)
    print(f"wrote {target} ({target.stat().st_size / 1024:.0f} KiB)")


def report_images(out: pathlib.Path) -> None:
    """Screenshots of graphc.report pages in headless Chromium (skipped without selenium
    and chromium): ``report-lecture.png`` with z1 selected, ``report-lenet.png`` with the
    fc1 layer selected."""
    import tempfile
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.options import Options
        from selenium.webdriver.chrome.service import Service
        from selenium.webdriver.common.by import By
    except ImportError:
        print("make_images: selenium is not installed; no report screenshots", file=sys.stderr)
        return
    chromium, driver_exe = shutil.which("chromium") or "/usr/bin/chromium", \
        shutil.which("chromedriver") or "/usr/bin/chromedriver"
    if not (pathlib.Path(chromium).exists() and pathlib.Path(driver_exe).exists()):
        print("make_images: chromium/chromedriver not found; no report screenshots (make browser)",
              file=sys.stderr)
        return
    options = Options()
    options.binary_location = chromium
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1600,1000"):
        options.add_argument(arg)
    params = lenet.init_params(np.random.default_rng(0))
    rng = np.random.default_rng(1)
    pages = {"report-lecture": ((autodiff_trace.f, 1.5, 0.5), {"argnums": (0, 1)}, "z1"),
             "report-lenet": ((lenet.loss, params, rng.random((4, 1, 8, 8)), np.array([0, 1, 2, 3])),
                              {}, "h")}
    driver = webdriver.Chrome(service=Service(driver_exe), options=options)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            for stem, (args, opts, name) in pages.items():
                page = graphc.report(*args, path=pathlib.Path(tmp) / f"{stem}.html", **opts)
                driver.get(page.as_uri())
                nid = driver.execute_script(
                    "var d = JSON.parse(document.getElementById('graphc-data').textContent);"
                    f"return Object.keys(d.nodes).find(k => d.nodes[k].name === '{name}');")
                driver.execute_script("window.graphcSelect([arguments[0]]); window.scrollTo(0, 0);",
                                      nid)
                driver.find_element(By.ID, "info")
                target = out / f"{stem}.png"
                driver.save_screenshot(str(target))
                print(f"wrote {target} ({target.stat().st_size / 1024:.0f} KiB)")
    finally:
        driver.quit()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default=str(ROOT / "docs" / "images"), metavar="DIR")
    parser.add_argument("--formats", default="svg,png", help="comma-separated (default svg,png)")
    ns = parser.parse_args(argv)
    formats = [s.strip() for s in ns.formats.split(",") if s.strip()]
    if shutil.which("dot") is None and set(formats) - {"dot", "gv"}:
        from graphc.draw import INSTALL_HINT
        print(f"make_images: Graphviz's `dot` is needed for {', '.join(formats)}: {INSTALL_HINT}",
              file=sys.stderr)
        return 1
    out = pathlib.Path(ns.out)
    out.mkdir(parents=True, exist_ok=True)
    example_images(out)
    import_graph_image(out)
    report_images(out)
    for stem, (what, args, opts) in images().items():
        for fmt in formats:
            start = time.perf_counter()
            path = graphc.render(what, *args, path=out / f"{stem}.{fmt}", **opts)
            print(f"wrote {path} ({path.stat().st_size / 1024:.0f} KiB, "
                  f"{time.perf_counter() - start:.1f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
