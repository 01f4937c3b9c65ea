# Everything runs inside .venv, created on first use from the pinned lock file.
# PYTHON (optional) is the interpreter that creates .venv; without it, the first
# CPython 3.11.5-3.13 among python3.13, python3.12, python3.11, python3 on PATH
# (tools/pick_python.sh; `make which-python` prints the choice).
PYTHON ?=
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
PICK_PYTHON := $(SHELL) tools/pick_python.sh
# One Jupyter kernel per clone, named after its absolute path, so clones do not fight.
KERNEL = training-nn-$(shell printf '%s' "$(CURDIR)" | cksum | cut -d ' ' -f 1)
LAB_ARGS ?=
PYTEST := $(BIN)/python -m pytest
NBVAL  := --nbval-current-env --nbval-sanitize-with nbval_sanitize.cfg -p no:randomly
export PYTHONHASHSEED := 0

.PHONY: help which-python env lab test test-browser test-site site lint unit nbval release release-check bench lock grade clean

help:
	@echo "make lab      open JupyterLab on notebooks/ (creates .venv first)"
	@echo "make test     lint, unit tests, release check, execute every notebook, build the site"
	@echo "make release  regenerate notebooks/ from solutions/ and re-execute solutions"
	@echo "make site     the course as a website in build/site/student/ (SOLUTIONS=1: instructor edition)"
	@echo "make bench    print performance tables (benchmarks/)"
	@echo "make lock     re-resolve the environment into requirements.lock"
	@echo "make which-python  print the Python that would create .venv (set PYTHON=... to choose)"

which-python:
	@$(PICK_PYTHON) "$(PYTHON)"

env: $(STAMP)

# The interpreter is checked before anything is downloaded; an existing .venv is kept
# (whichever supported Python made it). pip shows its progress.
$(STAMP): pyproject.toml requirements.lock
	@start=$$(date +%s); \
	if [ -x $(BIN)/python ]; then \
		$(PICK_PYTHON) --venv $(VENV) || exit 1; \
		echo "[1/2] Using the existing $(VENV) ($$($(BIN)/python -V 2>&1))$(if $(PYTHON),; PYTHON= is ignored: make clean to recreate it)"; \
	else \
		python=$$($(PICK_PYTHON) "$(PYTHON)") || exit 1; \
		echo "[1/2] Creating $(VENV) with $$python ($$($$python -V 2>&1))"; \
		$$python -m venv $(VENV) || exit 1; \
	fi; \
	echo "[2/2] Installing the pinned versions of requirements.lock into $(VENV) (the first time: 0.35 GB of downloads, 2.9 GB with the CUDA torch of Linux; see README, Start)"; \
	$(BIN)/python -m pip install --disable-pip-version-check -c requirements.lock -e ".[dev]" || exit 1; \
	touch $(STAMP); \
	seconds=$$(( $$(date +%s) - start )); \
	echo "$(VENV) is ready: installed in $$((seconds / 60)) min $$((seconds % 60)) s."

# The course's JupyterLab settings (save widget state with the notebook, so a reopened
# notebook shows each explorer's last picture), copied into .venv's JupyterLab.
LAB_SETTINGS = $(BIN)/python -c 'import pathlib, shutil, sys; \
	folder = pathlib.Path(sys.prefix, "share/jupyter/lab/settings/overrides.d"); \
	folder.mkdir(parents=True, exist_ok=True); \
	shutil.copy("lab-settings/overrides.json", folder / "course-utils.json")'

lab: $(STAMP)
	$(LAB_SETTINGS)
	$(BIN)/python -m ipykernel install --user --name $(KERNEL) \
		--display-name "Training NN ($(CURDIR))" >/dev/null
	@if [ "$$(id -u)" = 0 ]; then \
		echo "You are root (a container?): starting JupyterLab with --allow-root."; root=--allow-root; \
	fi; \
	echo "Starting JupyterLab; stop it with Ctrl-C."; \
	$(BIN)/jupyter lab $$root $(LAB_ARGS) notebooks/

test: lint unit nbval test-browser test-site

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

unit: $(STAMP)
	$(BIN)/course release --check
	$(PYTEST) -n 2 --dist loadscope tests

# Solutions must reproduce their stored outputs. Once: every setup cell runs PyTorch on one
# thread (tests/test_release.py), so a second run with OMP_NUM_THREADS=1 would execute every
# notebook again to compare the same computation. (That the student notebooks run top to
# bottom unsolved is tested once, in the browser, by test-browser.)
nbval: $(STAMP)
	$(PYTEST) -n 2 --dist loadscope --nbval $(NBVAL) solutions

# Every student notebook in JupyterLab in headless Chromium (tests/browser/; the unit run
# skips it). Needs Debian's chromium (apt-get install -y chromium); never downloads a browser.
test-browser: $(STAMP)
	@test -x /usr/bin/chromium || { echo "test-browser needs /usr/bin/chromium: apt-get install -y chromium"; exit 1; }
	$(LAB_SETTINGS)
	COURSE_BROWSER_TEST=1 $(PYTEST) -p no:randomly tests/browser

# The course as a static website (tools/build_site.py): `make site` builds the student
# edition into build/site/student/ (notebooks/, executed through a cache in build/site-work/),
# `make site SOLUTIONS=1` the instructor edition into build/site/instructor/ (solutions/ as
# stored). They need the site extra of pyproject.toml and the JavaScript the pages serve
# themselves (site/package-lock.json, exact versions, installed by npm ci); both are
# installed on first use. test-site builds both editions from what test-browser executed
# (build/browser/executed/), checks every page and opens them in headless Chromium.
SITE_STAMP := $(VENV)/.installed-site
NPM_STAMP  := site/node_modules/.installed

$(SITE_STAMP): $(STAMP)
	$(BIN)/python -m pip install --disable-pip-version-check -c requirements.lock -e ".[site]"
	touch $(SITE_STAMP)

$(NPM_STAMP): site/package.json site/package-lock.json
	@command -v npm >/dev/null || { echo "make site needs npm (Node.js 18 or later): apt-get install -y npm"; exit 1; }
	npm ci --prefix site --ignore-scripts --no-audit --no-fund
	touch $(NPM_STAMP)

site: $(SITE_STAMP) $(NPM_STAMP)
	$(BIN)/python tools/build_site.py $(if $(filter 1 yes true,$(SOLUTIONS)),--solutions)

test-site: $(SITE_STAMP) $(NPM_STAMP)
	@test -x /usr/bin/chromium || { echo "test-site needs /usr/bin/chromium: apt-get install -y chromium"; exit 1; }
	COURSE_SITE_TEST=1 $(PYTEST) -p no:randomly tests/test_site.py

release: $(STAMP)
	$(BIN)/course release

release-check: $(STAMP)
	$(BIN)/course release --check

bench: $(STAMP) $(SITE_STAMP) $(NPM_STAMP)  # bench_site.py builds the website
	@for script in benchmarks/bench_*.py; do $(BIN)/python $$script || exit 1; done

grade: $(STAMP)
	@test -n "$(SUBMISSIONS)" || (echo "usage: make grade SUBMISSIONS=dir/ [OUT=grades.csv]"; exit 2)
	$(BIN)/course grade-all $(SUBMISSIONS) --out $(or $(OUT),grades.csv) --workers 2

# Re-resolve every dependency from pyproject.toml in a scratch venv and record
# the exact versions. torch is written without its local label (+cpu) so the
# file installs on any machine. It resolves on the oldest supported Python (3.11),
# so that every pin supports all of them.
lock:
	rm -rf .lock-venv
	python=$$($(PICK_PYTHON) "$(or $(PYTHON),python3.11)") && $$python -m venv .lock-venv
	.lock-venv/bin/python -m pip install --quiet --disable-pip-version-check -e ".[dev,site]"
	( echo "# Generated by 'make lock' from pyproject.toml. Do not edit by hand."; \
	  .lock-venv/bin/python -m pip freeze --exclude-editable | sed -E 's/^(torch==[^+]*)\+.*/\1/' ) \
		> requirements.lock
	rm -rf .lock-venv

clean:
	rm -rf $(VENV) build *.egg-info site/node_modules
