# Two commands on a fresh machine with only Python and pip:
#   make run    set up, migrate an embedded SQLite database, load demo data, serve on :5000
#   make test   set up and run the tests (SQLite; CRM_TEST_DATABASE_URL for PostgreSQL)
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
FLASK := $(BIN)/flask --app wsgi
HOST ?= 127.0.0.1
PORT ?= 5000
# Links in messages and the printed console address follow the address served on.
export CRM_PUBLIC_BASE_URL ?= http://$(HOST):$(PORT)

.PHONY: install translations messages run serve test lint format bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP) translations

# The patient's words: .po catalogues (in git) compiled to .mo (not in git).
translations: $(STAMP)
	$(BIN)/pybabel -q compile -d crm/translations --use-fuzzy

# After adding or changing _("...") strings: extract them and merge into every .po.
messages: $(STAMP)
	$(BIN)/pybabel -q extract -F babel.cfg -o crm/translations/messages.pot --no-location \
		--project referral-crm --version 1 .
	$(BIN)/pybabel -q update -i crm/translations/messages.pot -d crm/translations --no-fuzzy-matching

run: $(STAMP) translations
	mkdir -p var
	$(FLASK) db upgrade
	$(FLASK) crm load-catalogue
	$(FLASK) crm load-nudge-rules
	$(FLASK) crm load-demo
	$(MAKE) --no-print-directory serve

serve: $(STAMP) translations
	rm -rf var/metrics && mkdir -p var/metrics
	export PROMETHEUS_MULTIPROC_DIR=$(CURDIR)/var/metrics; \
	$(BIN)/python -m crm.scheduler & scheduler=$$!; \
	trap 'kill $$scheduler 2>/dev/null' EXIT INT TERM; \
	$(BIN)/gunicorn --config config/gunicorn.conf.py --workers 2 --bind $(HOST):$(PORT) wsgi:app

test: $(STAMP) translations
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

bench: $(STAMP)
	$(BIN)/python bench/api.py
	$(BIN)/python bench/messaging.py
	$(BIN)/python bench/upload.py
	$(BIN)/python bench/search.py
	$(BIN)/python bench/reports.py
	$(BIN)/python bench/webhooks.py
	$(BIN)/python bench/retention.py

format: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

clean:
	rm -rf $(VENV) var .pytest_cache .ruff_cache
