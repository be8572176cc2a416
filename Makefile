# Two commands do all set-up on a fresh machine that has Python 3.11+:
#   make up     run castline: broker, simulator, line runtime and dashboard
#   make test   lint, type-check and run every test
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: up test lint bench clean browser

up: $(VENV)/.installed
	$(BIN)/castline up

test: $(VENV)/.installed browser
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks
	$(BIN)/mypy
	$(BIN)/pytest

# The dashboard's browser tests drive Debian's Chromium (Playwright's download is not used);
# a font with Chinese glyphs draws the zh-CN pages and charts; the device tests also log in
# with the off-the-shelf mosquitto clients.
browser:
	@if command -v chromium >/dev/null 2>&1 && fc-list :lang=zh 2>/dev/null | grep -q . \
		&& command -v mosquitto_pub >/dev/null 2>&1; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium fonts-wqy-zenhei mosquitto-clients; \
	else \
		echo "Chromium is missing: browser tests skip here (and fail in CI)."; \
		echo "Install it with: sudo apt-get install chromium fonts-wqy-zenhei mosquitto-clients"; \
	fi

bench: $(VENV)/.installed
	for b in benchmarks/bench_*.py; do $(BIN)/python $$b || exit 1; done

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

clean:
	rm -rf $(VENV) var
