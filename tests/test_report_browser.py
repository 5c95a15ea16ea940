"""graphc.report in a real browser: headless Chromium (selenium) opens the file:// page and
clicks; the same value must light up in the drawing, the trace table and the code."""
import os
import pathlib
import shutil
import sys

import pytest

import graphc

webdriver = pytest.importorskip("selenium.webdriver")
from selenium.webdriver.common.by import By  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "examples"))
import autodiff_trace  # noqa: E402

CHROMIUM = next((p for p in (os.environ.get("GRAPHC_CHROMIUM"), "/usr/bin/chromium",
                             shutil.which("chromium"), shutil.which("chromium-browser"))
                 if p and os.path.exists(p)), None)
DRIVER = next((p for p in (os.environ.get("GRAPHC_CHROMEDRIVER"), "/usr/bin/chromedriver",
                           shutil.which("chromedriver")) if p and os.path.exists(p)), None)
pytestmark = [pytest.mark.skipif(CHROMIUM is None or DRIVER is None,
                                 reason="chromium and chromedriver are not installed "
                                        "(make browser)"),
              pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz dot not installed")]


def chrome():
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service
    options = Options()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--window-size=1600,1000"):
        options.add_argument(arg)
    return webdriver.Chrome(service=Service(DRIVER), options=options)


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    path = tmp_path_factory.mktemp("browser") / "f.html"
    graphc.report(autodiff_trace.f, 1.5, 0.5, argnums=(0, 1), path=path)
    driver = chrome()
    driver.get(path.as_uri())
    yield driver
    driver.quit()


def _data(browser):
    return browser.execute_script(
        "return JSON.parse(document.getElementById('graphc-data').textContent)")


def _nid(browser, name):
    return next(k for k, v in _data(browser)["nodes"].items() if v["name"] == name)


def _click(browser, element):
    browser.execute_script("arguments[0].scrollIntoView({block: 'center'})", element)
    element.click()


def _highlighted(browser):
    return browser.execute_script(
        "return Array.from(document.querySelectorAll('.hl')).map(e => "
        "[e.tagName.toLowerCase(), e.id, e.getAttribute('data-nid'), e.getAttribute('data-line')])")


def test_page_loads_without_errors(browser):
    assert browser.title == "graphc report: f"
    errors = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
    assert errors == []


def test_clicking_a_node_highlights_its_code_line_and_trace_row(browser):
    z1 = _nid(browser, "z1")
    line = _data(browser)["nodes"][z1]["line"]
    _click(browser, browser.find_element(By.CSS_SELECTOR, f"g#v{z1} text"))
    hl = _highlighted(browser)
    assert ["g", f"v{z1}", None, None] in hl
    assert any(tag == "tr" and nid == z1 for tag, _, nid, _ in hl)
    assert any(tag == "span" and ln == str(line) for tag, _, _, ln in hl)
    code = browser.find_element(By.CSS_SELECTOR, f'#code .ln[data-line="{line}"]').text
    assert "z1 = w1 / w2" in code
    info = browser.find_element(By.ID, "info").text
    assert "autodiff_trace.py:16: z1 = w1 / w2" in info and "= 3" in info


def test_clicking_a_code_line_highlights_the_node(browser):
    d_w1 = _nid(browser, "d_w1")
    line = _data(browser)["nodes"][d_w1]["line"]
    _click(browser, browser.find_element(By.CSS_SELECTOR, f'#code .ln[data-line="{line}"]'))
    cls = browser.find_element(By.CSS_SELECTOR, f"g#v{d_w1}").get_attribute("class")
    assert "hl" in cls.split()
    row = browser.find_element(By.CSS_SELECTOR, f'#trace tr[data-nid="{d_w1}"]')
    assert "hl" in row.get_attribute("class").split() and "d_w1 = d_z1 / w2" in row.text


def test_clicking_a_trace_row_highlights_node_and_line(browser):
    z4 = _nid(browser, "z4")
    _click(browser, browser.find_element(By.CSS_SELECTOR, f'#trace tr[data-nid="{z4}"]'))
    assert "hl" in browser.find_element(By.CSS_SELECTOR, f"g#v{z4}").get_attribute("class")
    line = _data(browser)["nodes"][z4]["line"]
    span = browser.find_element(By.CSS_SELECTOR, f'#code .ln[data-line="{line}"]')
    assert "hl" in span.get_attribute("class").split() and "z4 = 3 * z1 - z3" in span.text
    # one selection at a time: every highlighted row is z4's (trace table, cost table)
    assert {nid for tag, _, nid, _ in _highlighted(browser) if tag == "tr"} == {z4}
