"""Root test configuration.

Shared fixtures live in ``tests/fixtures/*`` and are registered here as plugins so every test tree (unit,
integration, e2e, emulator, qbo_client, bench) can use them.
"""

pytest_plugins = [
    "tests.fixtures.emulator",
    "tests.fixtures.kafka",
    "tests.fixtures.database",
]
