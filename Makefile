# qbsync — the two commands a fresh machine needs:
#   make run    run the platform on its embedded defaults (broker, QBO emulator, four services on 127.0.0.1)
#   make test   run the test suite (real broker, SQLite and PostgreSQL)
# Both install uv and the locked dependencies first.

UV := $(shell command -v uv 2>/dev/null || echo "python3 -m uv")
export UV_PYTHON_DOWNLOADS := never

.PHONY: run test test-fast test-campaign lint schemas bootstrap

run:
	@scripts/bootstrap
	$(UV) run --frozen qbsync up

test:
	@scripts/bootstrap --test
	$(UV) run --frozen pytest

# Unit tests only (no broker, no database server): seconds.
test-fast:
	@scripts/bootstrap
	$(UV) run --frozen pytest tests/unit -q

# The full-size campaigns (minutes each) whose reduced forms run in `make test`.
test-campaign:
	@scripts/bootstrap --test
	$(UV) run --frozen pytest -m campaign

lint:
	@scripts/bootstrap
	$(UV) run --frozen ruff check .
	$(UV) run --frozen ruff format --check .
	$(UV) run --frozen mypy
	$(UV) run --frozen qbsync schemas check
	$(UV) run --frozen qbsync asyncapi check
	$(UV) run --frozen qbsync dashboard check

schemas:
	$(UV) run --frozen qbsync schemas export
	$(UV) run --frozen qbsync asyncapi export
	$(UV) run --frozen qbsync dashboard export
