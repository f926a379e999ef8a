# Two commands matter: `make run` (the whole portal on SQLite with demo data) and
# `make test` (every test). See README.md.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
MANAGE := $(BIN)/python manage.py
# Python caches what it compiles (__pycache__/, ignored by git). Where the environment says
# not to, every process compiles the project again and pytest rewrites every test module
# again: 10 s for each test process's start instead of 4, and CI starts dozens of processes.
unexport PYTHONDONTWRITEBYTECODE

.PHONY: run test test-fast e2e install sysdeps messages lint format bench bench-scale bench-wave worker clean

$(VENV)/.installed: pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info[:2] == (3, 11) else "Python 3.11 is needed (Django 5.2 LTS); set PYTHON=/path/to/python3.11")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade "pip>=25.1"
	$(BIN)/pip install -q -e . --group dev
	@touch $@

install: $(VENV)/.installed

sysdeps:
	@bash scripts/system-deps.sh

# Compiled only when a .po file changed: .ci/run's two passes call `make test` at once and
# must not both write the same .mo file.
MO_FILES := $(patsubst %.po,%.mo,$(wildcard locale/*/LC_MESSAGES/*.po))
messages: $(MO_FILES)
$(MO_FILES): %.mo: %.po | install sysdeps
	@$(MANAGE) compilemessages -v0 --ignore=.venv --locale $(word 2,$(subst /, ,$@))

run: install sysdeps messages
	@mkdir -p var
	DEBUG=1 $(MANAGE) migrate -v0
	DEBUG=1 $(MANAGE) seed_demo
	@# The job site's two own systems (reference sources; seed_demo registered them with
	@# these ports and secrets), stopped with the server.
	@$(BIN)/python scripts/reference_source.py --port 8101 --secret demo-source-a \
		--name "応募管理システム / Applications" --holds "応募履歴 / job applications" & a=$$!; \
	$(BIN)/python scripts/reference_source.py --port 8102 --secret demo-source-b \
		--name "閲覧履歴基盤 / Browsing history" --holds "閲覧履歴 / job-ad views" & b=$$!; \
	trap 'kill $$a $$b 2>/dev/null' EXIT INT TERM; \
	DEBUG=1 $(MANAGE) runserver 127.0.0.1:8000

# Every core (at most four: each worker on Redis takes two databases of its own, see
# tests/conftest.py), the slowest tests handed out first, one at a time: in chunks, the
# first chunk held every slow test and one worker ran them all while the others sat idle
# (docs/testing.md). XDIST= runs in one process.
XDIST ?= -n auto --maxprocesses 4 --dist load --maxschedchunk 1
test: install sysdeps messages
	$(BIN)/pytest $(XDIST) $(PYTEST_ARGS)

# A quick loop: everything but the real-browser journeys and the fault scenarios.
test-fast: install sysdeps messages
	$(BIN)/pytest $(XDIST) -m "not e2e and not faults" $(PYTEST_ARGS)

# Only the real-browser journeys (also part of `make test`); screenshots land in
# var/e2e-artifacts/. Needs Chromium: `sudo bash scripts/system-deps.sh --ci`.
e2e: install sysdeps messages
	$(BIN)/pytest tests/e2e $(PYTEST_ARGS)

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(MANAGE) makemigrations --check --dry-run -v0

format: install
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

worker: install
	$(BIN)/celery -A portal worker -B -l info

clean:
	rm -rf $(VENV) var staticfiles .pytest_cache .ruff_cache

# Page timings on a large data set. BENCH_STUDENTS=100000 for the full size; set
# DATABASE_URL=postgres://... to measure on PostgreSQL (default: var/bench.sqlite3), and
# CELERY_BROKER_URL=redis://... for dispatch and filing (BENCH_DISPATCH_ARGS: --help).
# BENCH_REPORTS_ARGS="--records 10000" measures the heavy disclosure report at one size.
BENCH_STUDENTS ?= 10000
bench: install sysdeps messages
	@mkdir -p var
	DATABASE_URL=$${DATABASE_URL:-sqlite:///$(CURDIR)/var/bench.sqlite3} \
		$(BIN)/python scripts/bench.py --students $(BENCH_STUDENTS)
	DATABASE_URL=$${DATABASE_URL:-sqlite:///$(CURDIR)/var/bench.sqlite3} \
		$(BIN)/python scripts/bench_api.py --students $(BENCH_STUDENTS)
	DATABASE_URL=$${DATABASE_URL:-sqlite:///$(CURDIR)/var/bench.sqlite3} \
		$(BIN)/python scripts/bench_inferences.py --students $(BENCH_STUDENTS)
	DATABASE_URL=$${DATABASE_URL:-sqlite:///$(CURDIR)/var/bench.sqlite3} \
		$(BIN)/python scripts/bench_requests.py
	DATABASE_URL=$${DATABASE_URL:-sqlite:///$(CURDIR)/var/bench.sqlite3} \
		$(BIN)/python scripts/bench_reports.py $(BENCH_REPORTS_ARGS)
	@# Dispatch and filing against raw SMTP and a no-op task (PostgreSQL and a broker only).
	DATABASE_URL=$${DATABASE_URL:-sqlite:///$(CURDIR)/var/bench.sqlite3} \
		$(BIN)/python scripts/bench_dispatch.py $(BENCH_DISPATCH_ARGS)

# The scale benchmark (issue 11): loads 100,000 students, 30,000 employers, 1,000,000
# consent events and activity records, 100,000 requests into PostgreSQL by COPY (once; a
# second run only measures), then prints every admin list, the API, reports and the
# retention job against their goals. PostgreSQL only; BENCH_SCALE_ARGS=--reload starts over.
BENCH_SCALE_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/portal_bench_scale
bench-scale: install sysdeps messages
	DATABASE_URL=$${DATABASE_URL:-$(BENCH_SCALE_DATABASE_URL)} \
		$(BIN)/python scripts/bench_scale $(BENCH_SCALE_ARGS)

# The 2019 wave from the companies' side (issues 19 and 20): BENCH_WAVE_ARGS="--students 100"
# for a quick run (default 2,000 students x 38 companies). Needs PostgreSQL (a database of its
# own, made afresh and dropped at the end: its name must contain "bench") and redis-server (a
# private broker); starts a real prefork worker, beat and an SMTP sink. See docs/performance.md.
BENCH_WAVE_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/portal_benchwave
bench-wave: install sysdeps messages
	DATABASE_URL=$${DATABASE_URL:-$(BENCH_WAVE_DATABASE_URL)} \
		$(BIN)/python scripts/bench_wave $(BENCH_WAVE_ARGS)
