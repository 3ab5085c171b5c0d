"""Fixtures for the emulator's own tests (helpers live in ``tests/emulator/helpers.py``)."""

from __future__ import annotations

import httpx
import pytest

from tests.emulator.helpers import Api
from tests.fixtures.emulator import EmulatorHandle


@pytest.fixture
def realm(emulator: EmulatorHandle) -> str:
    return emulator.create_company(name="Test Co")


@pytest.fixture
def api(emulator: EmulatorHandle, emulator_client: httpx.AsyncClient, realm: str) -> Api:
    return Api(emulator_client, realm, emulator.issue_tokens(realm)["access_token"])
