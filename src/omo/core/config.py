"""Settings from `OMO_*` environment variables (and a `.env` file)."""

from __future__ import annotations

import secrets
from functools import cached_property
from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Everything an operator can configure. Defaults give a working single-node install."""

    model_config = SettingsConfigDict(env_prefix="OMO_", env_file=".env", extra="ignore")

    data_dir: Path = Path("./data")
    database_url: str | None = Field(
        default=None, description="SQLAlchemy async URL; default is a SQLite file in data_dir"
    )
    redis_url: str | None = Field(default=None, description="redis://...; enables Redis broker")
    redis_prefix: str = "omo:"
    secret_key: str | None = Field(
        default=None,
        description="Server secret for pseudonymous ids; generated into data_dir if unset",
    )
    host: str = "127.0.0.1"
    port: int = 8000
    public_url: str = Field(default="", description="Base URL people reach, for QR codes")
    tls: bool = Field(default=False, description="Served behind TLS: Secure cookies and HSTS")
    miniapp_origin: str = Field(
        default="",
        description=(
            "Origin serving mini program packages (scheme://host[:port]), never the app's own; "
            "default http://HOST:PORT+1, a second port `omo serve` also listens on"
        ),
    )
    default_locale: str = "en"
    default_time_zone: str = Field(default="UTC", description="IANA zone for people without one")
    log_level: str = "info"

    sms_sender: Literal["log", "http"] = "log"
    sms_gateway_url: str | None = None
    sms_gateway_token: str | None = None

    session_ttl_days: int = 90
    verification_code_ttl_seconds: int = 600
    verification_code_max_attempts: int = 5
    qr_ticket_ttl_seconds: int = 120
    avatar_max_bytes: int = 1024 * 1024
    max_request_bytes: int = 2 * 1024 * 1024
    webhooks_to_private_networks: bool = Field(
        default=False,
        description="Let webhooks reach loopback and private addresses (LAN or development)",
    )
    accounts_webhook_hosts: str = Field(
        default="",
        description="If set, official accounts' webhooks may reach only these hosts "
        "(comma-separated; '*.example.org' for its subdomains)",
    )
    operators: str = Field(
        default="",
        description="OMO IDs of the platform's operators, comma-separated (verify accounts, "
        "set broadcast quotas)",
    )
    payment_codes_per_minute: int = Field(
        default=30, ge=1, description="Payment codes one person may get per minute"
    )

    @cached_property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{(self.data_dir / 'omo.sqlite3').resolve()}"

    @property
    def resolved_miniapp_origin(self) -> str:
        return (self.miniapp_origin or f"http://{self.host}:{self.port + 1}").rstrip("/")

    @property
    def app_origin(self) -> str:
        return (self.public_url or f"http://{self.host}:{self.port}").rstrip("/")

    @property
    def is_sqlite(self) -> bool:
        return self.resolved_database_url.startswith("sqlite")

    def resolved_secret_key(self) -> str:
        """The configured secret, else one generated once and kept in the data directory.

        Pseudonymous ids are derived from it, so it must never change for a deployment:
        losing it would give every person new openids at every brand.
        """
        if self.secret_key:
            return self.secret_key
        path = self.data_dir / "secret_key"
        if not path.exists():
            self.data_dir.mkdir(parents=True, exist_ok=True)
            path.write_text(secrets.token_urlsafe(48))
            path.chmod(0o600)
        return path.read_text().strip()
