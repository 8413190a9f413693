# StageBackup: `make run` starts everything on http://127.0.0.1:5555; `make test` runs the whole suite.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
export STAGEBACKUP_DATA_DIR ?= $(CURDIR)/data
export FLASK_APP := stagebackup

# Debian packages the test suite uses for real: PostgreSQL and MariaDB for the queue, schema and catalog
# tests (throwaway servers: .ci/with-postgres.sh, .ci/with-mariadb.sh); GNU tar/gzip, 7-Zip and
# openssl to check our archives without StageBackup; rsync/pigz for the benchmarks' baselines; Chromium for
# the page tests (driven by Playwright, which then downloads no browser of its own), a CJK font and an emoji
# font so its screenshots (docs/screenshots) show the Chinese labels and the file-kind icons. The image test
# (tests/image) builds and runs the Dockerfile with Debian's docker.io on a base made with debootstrap, and
# checks the image's nginx configuration with nginx -t.
DEBIAN_TEST_PACKAGES := postgresql mariadb-server tar gzip p7zip-full openssl rsync pigz coreutils chromium fonts-wqy-microhei \
	fonts-noto-color-emoji docker.io docker-compose debootstrap nginx-light

.PHONY: run install install-test test lint clean translations e2e screenshots bench

$(BIN)/python:
	$(PYTHON) -m venv $(VENV) || { rm -rf $(VENV); .ci/install-debian-deps.sh python3-venv && $(PYTHON) -m venv $(VENV); }
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.installed: setup.cfg pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e .
	touch $@

$(VENV)/.installed-test: setup.cfg pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(VENV)/.installed $@

install: $(VENV)/.installed

install-test: $(VENV)/.installed-test
	.ci/install-debian-deps.sh $(DEBIAN_TEST_PACKAGES)

run: install
	mkdir -p "$(STAGEBACKUP_DATA_DIR)"
	$(BIN)/flask db upgrade
	@$(BIN)/flask users needs-admin
	@$(BIN)/flask keys where --unsaved-only
	@echo "StageBackup on http://127.0.0.1:5555 (data in $(STAGEBACKUP_DATA_DIR)); Ctrl-C stops everything"
	exec $(BIN)/honcho start -f Procfile --port 5555

lint: install-test
	$(BIN)/ruff check .
	$(BIN)/hadolint Dockerfile

test: install-test lint
	.ci/with-postgres.sh .ci/with-mariadb.sh $(BIN)/python -m pytest $(PYTEST_ARGS)

# Web page strings: extract them, merge them into translations/*/LC_MESSAGES/messages.po (translate new
# entries by hand; zh_CN repeats the Chinese message id) and compile the .mo files. The .mo files are
# committed, so a clean clone needs no step.
translations: install-test
	$(BIN)/pybabel extract -F babel.cfg -k _l -k N_ --no-wrap --sort-by-file --omit-header -o translations/messages.pot .
	$(BIN)/pybabel update -i translations/messages.pot -d translations --no-wrap --ignore-obsolete
	$(BIN)/pybabel compile -d translations --statistics

# Real-browser tests only (Debian's Chromium, driven by Playwright; part of `make test` too).
e2e: install-test
	$(BIN)/python -m pytest tests/e2e $(PYTEST_ARGS)

# The same tests, retaking the pictures in docs/screenshots (a plain test run takes them into a temporary folder).
screenshots: install-test
	STAGEBACKUP_SCREENSHOTS=1 $(BIN)/python -m pytest tests/e2e $(PYTEST_ARGS)

# Every bench/bench_*.py at small sizes, each against its baseline (pigz, 7z, rsync, dd) in the same run,
# then one table of ratios: a few minutes on two cores, noisy at these sizes. Full sizes: run a script alone.
# BENCH_ARGS="--only tgz,sync" picks some; trees are generated once into $$STAGEBACKUP_BENCH_DIR.
bench: install-test
	$(BIN)/python bench/run_all.py $(BENCH_ARGS)

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .ruff_cache
