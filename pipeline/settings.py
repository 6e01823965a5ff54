"""One typed, frozen settings object per process.

Read from the TOML file named by ``PIPELINE_CONFIG`` (the repo ships ``config/local.toml``),
then overridden key by key from the environment: ``PIPELINE_KAFKA__BOOTSTRAP=host:port``.
"""

from __future__ import annotations

import base64
import os
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator
from pydantic_core import ErrorDetails
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

DEFAULT_CONFIG = Path(__file__).resolve().parent.parent / "config" / "local.toml"

#: the canonical payment statuses (domain.model.Status; not imported: settings stay leaf)
CANONICAL_STATUSES = (
    "new", "pending", "confirmed", "completed", "underpaid", "overpaid", "expired", "failed",
    "refunded", "canceled",
)  # fmt: skip


def _b64(text: str) -> bool:
    text = text.rstrip("=")
    try:
        return bool(base64.b64decode(text + "=" * (-len(text) % 4), validate=True))
    except ValueError:
        return False


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class KafkaSettings(_Frozen):
    bootstrap: str = "127.0.0.1:9092"


class TopicSettings(_Frozen):
    raw: str = "webhooks.raw"
    events: str = "payments.events"
    state: str = "payments.state"
    transitions: str = "payments.transitions"
    dlq: str = "webhooks.dlq"
    partitions: int = 4
    replication: int = 1

    def all(self) -> list[str]:
        return [self.raw, self.events, self.state, self.transitions, self.dlq]


class IngestSettings(_Frozen):
    host: str = "127.0.0.1"
    port: int = 8000
    #: a connection must have sent a request's complete headers within this many seconds of
    #: opening (or of its previous answer), else it is closed (slowloris); ingest.headers_deadline
    header_timeout_s: float = 10.0
    max_body_bytes: int = 256 * 1024
    #: the whole request body must arrive within this many seconds of the headers, else 408
    body_timeout_s: float = 10.0
    cors_origins: list[str] = Field(default_factory=list)
    produce_timeout_s: float = 5.0
    kafka_linger_ms: int = 5
    retry_after_s: int = 5
    #: webhooks waiting for their broker ack at most; beyond, 503 + Retry-After at once (0016)
    max_inflight: int = 512
    #: Prometheus /metrics on this internal port, never on the public one; 0 = off
    metrics_host: str = "127.0.0.1"
    metrics_port: int = 0


class ApiSettings(_Frozen):
    """Bearer tokens of the merchant API (checkouts, transactions, the dashboard's data).

    Several at once so that a token rotates without downtime; empty = the merchant API is
    closed (every call 401), never open."""

    tokens: list[SecretStr] = Field(default_factory=list)


class StreamsSettings(_Frozen):
    app_id: str = "checkout-pipeline"
    store: str = "rocksdb://"
    data_dir: str = ".run/streams-data"
    dedup_ttl_s: int = 7 * 24 * 3600
    #: batch output records this long: fewer, larger produce requests. Each batch of the worker
    #: waits for its acks, so this is also added to its latency (decision 0006)
    producer_linger_ms: int = 5
    #: the apply agent takes up to this many events at a time, waiting at most batch_wait_ms
    #: for more: one table write and one state snapshot per payment per batch
    batch_max: int = 500
    batch_wait_ms: int = 10
    #: one payment's table value and snapshot stay below this (Kafka's default message limit
    #: is 1 MiB); a record that would grow it further is dead-lettered (decision 0006)
    max_state_bytes: int = 512 * 1024
    #: decoded table entries kept in memory per worker (payments seen again soon)
    entry_cache_size: int = 20_000
    retry_attempts: int = 5
    retry_base_s: float = 0.2
    retry_max_s: float = 5.0
    metrics_host: str = "127.0.0.1"
    metrics_port: int = 0  # Prometheus /metrics on this port; 0 = off


class SinkSettings(_Frozen):
    batch_size: int = 1000
    flush_interval_ms: int = 200
    #: ClickHouse batches wait this long for more records (analytics, not the current state)
    clickhouse_linger_ms: int = 1000
    retry_base_s: float = 0.5
    retry_max_s: float = 30.0
    metrics_host: str = "127.0.0.1"
    metrics_port: int = 0  # Prometheus /metrics on this port; 0 = off


class DashboardSettings(_Frozen):
    """The monitoring page under ``/dashboard`` of its own process (``pipeline-dashboard``),
    on ``host``/``port``. It takes any ``[api] tokens`` and, if set, this extra read-only token
    (monitoring staff without merchant API access). No token at all turns it off (404)."""

    host: str = "127.0.0.1"
    port: int = 8001
    #: a request's headers within this many seconds, else the connection closes (slowloris)
    header_timeout_s: float = 10.0
    token: SecretStr = SecretStr("")
    #: the session cookie's ``Secure`` flag: set it when browsers reach the dashboard over HTTPS
    cookie_secure: bool = False
    session_hours: float = 12.0


class PostgresSettings(_Frozen):
    dsn: SecretStr = SecretStr("postgresql://pipeline@127.0.0.1:5432/pipeline")


class ClickHouseSettings(_Frozen):
    url: str = "http://127.0.0.1:8123"
    database: str = "default"
    username: str = "default"
    password: SecretStr = SecretStr("")


class SecretsProvider(_Frozen):
    secrets: list[SecretStr] = Field(default_factory=list)


class CoinPaymentsProvider(SecretsProvider):
    merchant_id: str = ""


class JwtKey(_Frozen):
    alg: Literal["HS256", "RS256", "ES256"]
    secret: SecretStr | None = None
    public_key_pem: str | None = None


class JwtProvider(_Frozen):
    keys: list[JwtKey] = Field(default_factory=list)


class ProviderSettings(_Frozen):
    coinbase: SecretsProvider = SecretsProvider()
    btcpay: SecretsProvider = SecretsProvider()
    nowpayments: SecretsProvider = SecretsProvider()
    coinpayments: CoinPaymentsProvider = CoinPaymentsProvider()
    standard: SecretsProvider = SecretsProvider()
    jwt: JwtProvider = JwtProvider()


class NotifyEndpoint(_Frozen):
    """One merchant endpoint: where to POST, the Standard Webhooks secrets to sign with (a
    list, for rotation: one signature per secret), the canonical statuses it wants (all when
    absent), its request timeout and its cap on concurrent requests."""

    url: str = Field(pattern=r"^https?://[^\s]+$")
    secrets: list[SecretStr] = Field(min_length=1)
    statuses: list[str] | None = None
    timeout_s: float = Field(default=10.0, gt=0)
    max_in_flight: int = Field(default=8, ge=1)

    @field_validator("secrets")
    @classmethod
    def _whsec(cls, v: list[SecretStr]) -> list[SecretStr]:
        for s in v:
            text = s.get_secret_value()
            if not text.startswith("whsec_") or not _b64(text[6:]):
                raise ValueError("each secret must be whsec_<base64>")
        return v

    @field_validator("statuses")
    @classmethod
    def _canonical(cls, v: list[str] | None) -> list[str] | None:
        if v is not None and (bad := [s for s in v if s not in CANONICAL_STATUSES]):
            raise ValueError(f"not canonical statuses: {', '.join(bad)[:200]}")
        return v


class NotifySettings(_Frozen):
    """Merchant notifications (docs/notifications.md): the endpoints and the retry schedule.

    Retry ``n`` (1-based) waits ``min(retry_first_s * retry_factor**(n-1), retry_max_s)``,
    half of it jittered; a delivery still failing ``give_up_after_s`` after its transition
    goes to ``dlq_topic``."""

    endpoints: list[NotifyEndpoint] = Field(default_factory=list)
    group: str = "notify"
    dlq_topic: str = "notify.dlq"
    retry_first_s: float = Field(default=8.0, gt=0)
    retry_factor: float = Field(default=3.0, ge=1)
    retry_max_s: float = Field(default=6 * 3600.0, gt=0)
    give_up_after_s: float = Field(default=3 * 24 * 3600.0, gt=0)
    #: the dispatcher looks for due retries this often (new transitions wake it at once)
    poll_interval_ms: int = 200
    metrics_host: str = "127.0.0.1"
    metrics_port: int = 0  # Prometheus /metrics port, 0 = off; the launcher picks a free one


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="PIPELINE_",
        env_nested_delimiter="__",
        dotenv_filtering="only_existing",  # stack.env's KAFKA_BOOTSTRAP=... is for shells
        frozen=True,
        extra="forbid",
    )

    kafka: KafkaSettings = KafkaSettings()
    topics: TopicSettings = TopicSettings()
    ingest: IngestSettings = IngestSettings()
    api: ApiSettings = ApiSettings()
    streams: StreamsSettings = StreamsSettings()
    sinks: SinkSettings = SinkSettings()
    postgres: PostgresSettings = PostgresSettings()
    clickhouse: ClickHouseSettings = ClickHouseSettings()
    dashboard: DashboardSettings = DashboardSettings()
    providers: ProviderSettings = ProviderSettings()
    notify: NotifySettings = NotifySettings()
    log_level: str = "INFO"
    #: a payment registered or pending with no news for longer is listed as stuck
    #: (`pipeline stuck`, the dashboard, ClickHouse view stuck_payments)
    stuck_after_s: int = 30 * 60

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        path = Path(os.environ.get("PIPELINE_CONFIG", str(DEFAULT_CONFIG)))
        toml = TomlConfigSettingsSource(settings_cls, toml_file=path)
        return (init_settings, env_settings, dotenv_settings, toml)


class ConfigError(Exception):
    """The configuration file is missing or invalid."""


def run_dir() -> Path:
    """The local stack's run folder (``stack.json``, ``stack.env``, logs, data):
    ``PIPELINE_RUN_DIR``, else ``.run``. Read when a command runs, never at import."""
    return Path(os.environ.get("PIPELINE_RUN_DIR", ".run"))


def load_settings(env_file: Path | None = None) -> Settings:
    """Build the settings of this process, failing with one readable line that never holds a
    configured value (pydantic's own message echoes the input: a secret, perhaps).
    ``env_file`` (a stack's ``stack.env``, may be missing) counts below the environment."""
    path = Path(os.environ.get("PIPELINE_CONFIG", str(DEFAULT_CONFIG)))
    if not path.is_file():
        raise ConfigError(f"config file not found: {path} (set PIPELINE_CONFIG)")
    try:
        return Settings(_env_file=env_file)  # type: ignore[call-arg]  # pydantic-settings init arg
    except ValidationError as exc:
        problems = "; ".join(_problem(e) for e in exc.errors(include_url=False)[:5])
        more = f" (and {exc.error_count() - 5} more)" if exc.error_count() > 5 else ""
        raise ConfigError(f"invalid config {path}: {problems}{more}") from None
    except Exception as exc:  # tomllib's TOMLDecodeError, pydantic-settings' SettingsError
        # their messages name a line and column or a field, never the value; the chain is
        # dropped all the same so that no traceback shows a value either
        first = str(exc).splitlines()
        raise ConfigError(f"invalid config {path}: {' '.join(first[:3])}") from None


def _problem(error: ErrorDetails) -> str:
    """Where and what, from pydantic's fixed message: the input value is left out."""
    where = ".".join(str(part) for part in error["loc"]) or "(top level)"
    return f"{where}: {error['msg']}"
