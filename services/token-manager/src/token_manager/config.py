"""Start-up checks: in production token-manager refuses to run on development defaults.

The defaults of ``TokenManagerSettings`` are a published development setup (the emulator, a dev OAuth app, a dev
service credential, a generated encryption key). Any of them in production would either not work against Intuit
or hand the keys to whoever reads this repository, so ``QBSYNC_ENVIRONMENT=production`` turns each into a refusal
that names what to set.
"""

from __future__ import annotations

from qbsync.settings import Settings, TokenManagerSettings

__all__ = ["ConfigurationError", "check_configuration", "production_problems"]

MIN_SERVICE_TOKEN_LENGTH = 32


class ConfigurationError(RuntimeError):
    """token-manager cannot start with this configuration."""


def production_problems(settings: Settings) -> list[str]:
    """What a production deployment still has to configure (empty when it is ready)."""
    tm = settings.token_manager
    dev = TokenManagerSettings()
    problems: list[str] = []
    service_token = tm.service_token.get_secret_value()
    if service_token == dev.service_token.get_secret_value() or len(service_token) < MIN_SERVICE_TOKEN_LENGTH:
        problems.append(
            f"QBSYNC_TOKEN_MANAGER__SERVICE_TOKEN must be a random value of at least {MIN_SERVICE_TOKEN_LENGTH} "
            "characters (not the development default)"
        )
    if tm.client_id == dev.client_id or tm.client_secret.get_secret_value() == dev.client_secret.get_secret_value():
        problems.append("QBSYNC_TOKEN_MANAGER__CLIENT_ID / __CLIENT_SECRET must be the Intuit app's real keys")
    if tm.oauth_environment == "emulator":
        problems.append("QBSYNC_TOKEN_MANAGER__OAUTH_ENVIRONMENT must be production or sandbox, not emulator")
    if not tm.encryption_keys and tm.encryption_key_file is None:
        problems.append("an encryption key is required: QBSYNC_TOKEN_MANAGER__ENCRYPTION_KEYS or __ENCRYPTION_KEY_FILE")
    if settings.qbo.environment != tm.oauth_environment and tm.oauth_environment != "emulator":
        problems.append(
            f"QBSYNC_QBO__ENVIRONMENT ({settings.qbo.environment}) must match the OAuth environment "
            f"({tm.oauth_environment}): tokens of one environment are refused by the other's API"
        )
    if not tm.redirect_uri.startswith("https://"):
        problems.append("QBSYNC_TOKEN_MANAGER__REDIRECT_URI must be the public https callback registered with Intuit")
    return problems


def check_configuration(settings: Settings) -> None:
    if settings.environment != "production":
        return
    problems = production_problems(settings)
    if problems:
        raise ConfigurationError("token-manager refuses to start in production: " + "; ".join(problems))
