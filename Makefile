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

# Benchmarks (issue 10, docs/performance.md): every scenario and its baselines side by side in one run; the JSON
# report goes to var/bench/. `bench` is the full run (45-60 minutes here), `bench-smoke` the reduced sizes (2-3 minutes).
.PHONY: bench bench-smoke
bench:
	@scripts/bootstrap --test
	$(UV) run --frozen python -m tests.bench --out var/bench/report.json

bench-smoke:
	@scripts/bootstrap --test
	$(UV) run --frozen python -m tests.bench --smoke --out var/bench/report-smoke.json

# The reliability and security campaign (issue 9), full form — see docs/reliability.md. 2,000 events for 5
# organizations through the four services while each is SIGKILLed 4 times and every emulator fault runs 3 times,
# then the accounting pass; then the security, poison/fuzz and shared-budget tests with more examples. ~20 minutes.
.PHONY: reliability
reliability:
	@scripts/bootstrap --test
	$(UV) run --frozen python -m tests.reliability full
	QBSYNC_FUZZ_EXAMPLES=20 QBSYNC_FUZZ_HTTP_EXAMPLES=50 $(UV) run --frozen pytest tests/reliability tests/security tests/fuzz -q
