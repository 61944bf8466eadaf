# The course's commands. `make book` and `make test` work on a fresh clone: each creates
# .venv and installs requirements.txt into it the first time (about 3 minutes).
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat requirements.txt pyproject.toml | cksum | cut -d' ' -f1)
# pytest-xdist is not used: the suites are sized for 2 cores run one after another.
PYTEST := $(BIN)/python -m pytest

.PHONY: book catalogs test lint test-unit test-nbval system-deps exercises grade bench bench-grading \
        clean venv

$(STAMP): requirements.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -r requirements.txt
	$(BIN)/python -m pip install -q --no-deps -e .
	rm -f $(VENV)/.installed-*
	touch $@

venv: $(STAMP)

# MathJax 3, served by the site itself (no CDN): fetched from npm once into .cache/ (ignored
# by git); only the combined TeX/MathML-to-HTML script, its fonts and its TeX extensions are
# copied next to it for the build (_config.yml: html_static_path, mathjax_path).
MATHJAX_VERSION := 3.2.2
MATHJAX_NPM := .cache/mathjax/npm
MATHJAX := .cache/mathjax/site/mathjax/tex-mml-chtml.js

$(MATHJAX):
	npm install --silent --no-audit --no-fund --prefix $(MATHJAX_NPM) mathjax@$(MATHJAX_VERSION)
	rm -rf .cache/mathjax/site && mkdir -p .cache/mathjax/site/mathjax/output/chtml \
	  .cache/mathjax/site/mathjax/input/tex
	cp $(MATHJAX_NPM)/node_modules/mathjax/es5/tex-mml-chtml.js .cache/mathjax/site/mathjax/
	cp -r $(MATHJAX_NPM)/node_modules/mathjax/es5/output/chtml/fonts \
	  .cache/mathjax/site/mathjax/output/chtml/
	cp -r $(MATHJAX_NPM)/node_modules/mathjax/es5/input/tex/extensions \
	  .cache/mathjax/site/mathjax/input/tex/

## book: build the website from the notebooks' stored outputs, in English into _build/html and
## in Korean into _build/html/ko (the same notebooks, with locale/ko/LC_MESSAGES/ catalogs)
book: $(STAMP) $(MATHJAX)
	$(BIN)/python scripts/build_book.py
	@echo "Preview: $(BIN)/python -m http.server -d _build/html 8000"

## catalogs: merge the English text into the Korean catalogs after it changes
## (PAGES="book/06_lenet" to update only some pages' catalogs)
catalogs: $(STAMP) $(MATHJAX)
	$(BIN)/python scripts/build_book.py catalogs $(PAGES)

## test: lint, then unit tests, autograder tests, every notebook under nbval, the browser test
test: $(STAMP) system-deps
	@$(MAKE) --no-print-directory lint
	@rc=0; $(MAKE) --no-print-directory test-unit || rc=1; \
	$(MAKE) --no-print-directory test-nbval || rc=1; exit $$rc

## lint: ruff (rules and line length in pyproject.toml); fails on any finding
lint: $(STAMP)
	$(BIN)/ruff check autograder cnncourse tests bench scripts book

test-unit: $(STAMP) $(MATHJAX)
	$(PYTEST) tests --durations=15

# Chapters run top to bottom in reduced mode (CNN_QUICK=1): deterministic cells are compared
# with their stored outputs, training cells only have to run.
test-nbval: $(STAMP)
	CNN_QUICK=1 $(PYTEST) -p no:cacheprovider --nbval book/ exercises/ \
	  --nbval-sanitize-with .ci/nbval_sanitize.cfg --nbval-current-env -o testpaths= -o addopts=-ra

# Debian packages the tests use: bubblewrap (the grader's sandbox), Chromium (browser test),
# a Korean font (the Korean pages' screenshots, Korean words in the feedback's plots).
system-deps:
	@if command -v bwrap >/dev/null && command -v chromium >/dev/null && \
	  [ -d /usr/share/fonts/truetype/nanum ]; then exit 0; fi; \
	if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
	    bubblewrap chromium chromium-driver fonts-nanum >/dev/null; \
	else echo "note: bubblewrap/chromium missing and not root: sandbox falls back to rlimits," \
	  "browser test is skipped"; fi

## exercises: regenerate the student notebooks in exercises/ from solutions/ (nbgrader)
exercises: $(STAMP)
	$(BIN)/python -m autograder release

## grade: make grade ASSIGNMENT=assignment1 SUBMISSIONS="a.ipynb b.zip" OUT=grades
grade: $(STAMP)
	$(BIN)/python -m autograder grade --assignment $(ASSIGNMENT) --out $(OUT) $(SUBMISSIONS)

## bench: fast trainer vs d2l.Trainer on whatever device is present. Default: CI-sized
## (--quick: one full LeNet epoch, a few hundred images for VGG and ResNet); EPOCHS=10 trains
## fully (d2l for one epoch) for a GPU lease.
bench: $(STAMP)
	$(BIN)/python bench/bench_trainer.py $(if $(EPOCHS),--epochs $(EPOCHS) --d2l-epochs 1,--quick) \
	  --compile both --compile-models lenet

## bench-grading: 100 submissions through the grader (1 and 2 workers) vs nbgrader autograde
bench-grading: $(STAMP) system-deps
	$(BIN)/python bench/bench_grading.py

clean:
	rm -rf _build .pytest_cache
