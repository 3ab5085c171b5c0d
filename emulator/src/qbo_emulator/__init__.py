"""qbo-emulator: a faithful QuickBooks Online Accounting API v3 + Intuit OAuth 2.0 emulator (stripe-mock for QBO).

    app = create_app()                        # ASGI; app.state.emulator is the EmulatorCore
    core = app.state.emulator
    realm = core.create_company(name="Acme").realm_id

Run it as a process with ``qbo-emulator --port 8765`` (see ``docs/emulator.md``).
"""

from qbo_emulator.app import create_app
from qbo_emulator.config import (
    DEV_CLIENT_ID,
    DEV_CLIENT_SECRET,
    DEV_VERIFIER_TOKEN,
    AppRegistration,
    EmulatorConfig,
    FidelityConfig,
    LatencyConfig,
    LimitsConfig,
    OAuthConfig,
    WebhookConfig,
)
from qbo_emulator.core import EmulatorCore

__all__ = [
    "DEV_CLIENT_ID",
    "DEV_CLIENT_SECRET",
    "DEV_VERIFIER_TOKEN",
    "AppRegistration",
    "EmulatorConfig",
    "EmulatorCore",
    "FidelityConfig",
    "LatencyConfig",
    "LimitsConfig",
    "OAuthConfig",
    "WebhookConfig",
    "create_app",
]
