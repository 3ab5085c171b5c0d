"""Fixtures of the token-manager tests: the emulator behind a token-endpoint recorder, and a log guard.

Every test here runs with token-manager's, qbsync's, httpx's and the emulator's loggers at DEBUG, and fails if any
captured log line contains any token value the emulator issued during the test (in-process code runs without the
redaction filter of the service shell, so this checks that the code never logs a token in the first place).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

from qbo_emulator import EmulatorConfig
from tests.token_manager.harness import OAuthEmulator, serve_oauth_emulator

_DEBUG_LOGGERS = ("token_manager", "qbsync", "httpx", "httpcore", "qbo_emulator", "uvicorn")


@pytest.fixture
def issued_token_sets() -> list[set[str]]:
    """Token values handed out by every emulator of the test (filled by ``oauth_emulator``)."""
    return []


@pytest.fixture(autouse=True)
def no_token_in_logs(caplog: pytest.LogCaptureFixture, issued_token_sets: list[set[str]]) -> Iterator[None]:
    caplog.set_level(logging.INFO)
    for name in _DEBUG_LOGGERS:
        caplog.set_level(logging.DEBUG, logger=name)
    yield
    tokens = set().union(*issued_token_sets) if issued_token_sets else set()
    if not tokens:
        return
    for phase in ("setup", "call", "teardown"):
        for record in caplog.get_records(phase):
            line = record.getMessage() + (record.exc_text or "")
            leaked = [t for t in tokens if t in line]
            assert not leaked, f"a token value appeared in a log line of {record.name}: {record.levelname}"


@pytest.fixture
def oauth_emulator_config() -> EmulatorConfig:
    """Override in a module (or parametrize) to change the emulator, e.g. the refresh-token grace."""
    return EmulatorConfig()


@pytest.fixture
def oauth_emulator(oauth_emulator_config: EmulatorConfig, issued_token_sets: list[set[str]]) -> Iterator[OAuthEmulator]:
    with serve_oauth_emulator(oauth_emulator_config) as emulator:
        issued_token_sets.append(emulator.recorder.issued)
        yield emulator
