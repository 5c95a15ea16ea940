PY    ?= python3
VENV  := .venv
BIN   := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: venv dot browser demo test fuzz bench clean

venv: $(STAMP)

# Reinstall whenever pyproject.toml changes.
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q -e '.[test]'
	touch $@

# Graphviz's `dot` binary (the Python `graphviz` package only wraps it).
# Never fails: most of graphc works without dot, and tests needing it skip.
dot:
	@if command -v dot >/dev/null 2>&1; then \
	    dot -V; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing graphviz with apt-get"; \
	    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq graphviz && dot -V; } \
	        || echo "warning: apt-get install graphviz failed; continuing without dot"; \
	else \
	    echo "warning: graphviz 'dot' not found on PATH; continuing without it."; \
	    echo "  install it with one of:"; \
	    echo "    sudo apt-get install graphviz"; \
	    echo "    brew install graphviz"; \
	    echo "    conda install -c conda-forge graphviz"; \
	fi

# Headless Chromium and its WebDriver for tests/test_report_browser.py (graphc.report in a
# real browser, through selenium). Never fails: the browser tests skip without them.
browser:
	@if command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1; then \
	    chromium --version 2>/dev/null || true; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing chromium and chromium-driver with apt-get"; \
	    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver; } \
	        || echo "warning: apt-get install chromium chromium-driver failed; browser tests will skip"; \
	else \
	    echo "warning: chromium/chromedriver not found; tests/test_report_browser.py will skip."; \
	    echo "  install them with: sudo apt-get install chromium chromium-driver"; \
	fi

demo: venv dot
	$(BIN)/graphc demo

# ruff first (its config is in pyproject.toml); then pytest, whose exit status is passed
# through as is (5 = no tests collected fails too). The full suite, `slow` tests included.
test: venv dot browser
	$(BIN)/ruff check graphc tests tools benchmarks examples
	$(BIN)/python -m pytest -q -m "not fuzz and not bench"

# The long fuzzing profile: tests/test_fuzz.py runs GRAPHC_FUZZ_EXAMPLES programs per
# property (default 2000); tests/test_trust_fuzz.py runs 5x that in each of its two main
# properties (20,000 programs over the whole primitive set) plus the per-feature ones.
# Each failure prints its seed and program.
fuzz: venv dot
	$(BIN)/python -m pytest -q -m fuzz --hypothesis-show-statistics

# Peers installed best-effort. torch is pinned: unpinned it pulls a multi-GB CUDA build.
bench: venv
	$(BIN)/pip install -q torch==2.13.0 || echo "warning: torch install failed; benchmarking without torch"
	$(BIN)/pip install -q jax jaxlib autograd || echo "warning: jax/autograd install failed; benchmarking without them"
	$(BIN)/python benchmarks/run.py --settings --docs docs/performance.md

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache .hypothesis
	find . -path ./.git -prune -o -type d -name __pycache__ -prune -exec rm -rf {} +
	find . -path ./.git -prune -o -type f -name '*.pyc' -exec rm -f {} +
