"""Runtime settings: one frozen object read from ``TWIN_*`` environment variables.

Secrets (the Kafka SASL password, the API token) come from the environment
only; they are ``SecretStr`` so they never print.
"""

from __future__ import annotations

import tempfile
from functools import lru_cache
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from twin.config import TwinConfig

__all__ = ["FAUST_DATADIR", "Settings", "get_settings"]

#: Faust's working folder. Its default, ``{conf.name}-data``, is made in the
#: current directory; twins live in Redis and tables in memory, so nothing in
#: it needs to survive and it goes to the temporary folder instead.
FAUST_DATADIR = f"{tempfile.gettempdir()}/twinstream-faust-{{conf.name}}-data"


class Settings(BaseSettings):
    """Every knob of a twinstream process. Environment prefix ``TWIN_``."""

    model_config = SettingsConfigDict(env_prefix="TWIN_", frozen=True, extra="ignore")

    # --- Kafka -------------------------------------------------------------
    kafka_bootstrap: str = Field("127.0.0.1:9092", description="host:port[,host:port]")
    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    kafka_sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] | None = None
    kafka_sasl_username: str | None = None
    kafka_sasl_password: SecretStr | None = None
    kafka_ssl_cafile: str | None = None
    partitions: int = Field(8, ge=1, le=1024, description="Partitions of every twin topic.")
    replication_factor: int = Field(1, ge=1)
    consumer_group: str = "twinstream"

    # --- topics --------------------------------------------------------------
    topic_vitals: str = "twin.vitals"
    topic_labs: str = "twin.labs"
    topic_wearables: str = "twin.wearables"
    topic_profiles: str = "twin.profiles"
    topic_fhir: str = "twin.fhir"
    topic_outcomes: str = "twin.outcomes"
    topic_alert_acks: str = "twin.alert-acks"
    topic_alerts: str = "twin.alerts"
    topic_deadletter: str = "twin.deadletter"

    # --- state -------------------------------------------------------------
    redis_url: str = Field(
        "redis://127.0.0.1:6379/0", description="Twin store: redis://... or memory://"
    )
    redis_password: SecretStr | None = Field(
        None, description="Redis password (ACL user), kept out of TWIN_REDIS_URL and of logs."
    )
    key_prefix: str = Field("ts", pattern=r"^[a-z0-9_]{1,16}$")
    pseudonym_key: SecretStr | None = Field(
        None, description="HMAC key: when set, patient ids are pseudonymised at ingest."
    )

    # --- processing ----------------------------------------------------------
    batch_max: int = Field(
        500,
        ge=1,
        description="Records per partition and micro-batch at most (without batch"
        " delivery: records per micro-batch).",
    )
    hot_twins: int = Field(
        # 20,000: the full bench's 13,996 patients all stay hot; with 10,000 a share
        # of them was evicted and reloaded (7,793 vs 8,509 events/s in paired runs).
        # Worker RSS: 822 vs 870 MB there; 485 vs 596 MB with 100,000 small twins.
        20_000,
        ge=1,
        description="Twins a worker keeps decoded in memory, all partitions.",
    )
    batch_within_ms: int = Field(
        0,
        ge=0,
        description="Longest wait for more events after a batch's first (0: a batch is"
        " what arrived while the previous one was processed).",
    )
    faust_eager_delivery: bool = Field(
        True, description="Hand messages to the agent without Faust's per-message tasks."
    )
    faust_batch_delivery: bool = Field(
        True, description="Hand the agent one Faust message per partition and fetch."
    )
    fast_fetch_decode: bool = Field(
        True,
        description="Encode fetch requests and decode fetch responses with generated code"
        " instead of aiokafka's field-by-field code (stream/fast_protocol.py).",
    )
    fetch_max_wait_ms: int = Field(
        10, ge=0, le=1500, description="Longest the broker may hold a fetch (live feed)."
    )
    fetch_min_bytes: int = Field(
        32_768,
        ge=1,
        description="Bytes the broker may wait for (up to the fetch wait) before answering.",
    )
    fetch_max_wait_busy_ms: int = Field(
        500, ge=0, le=1500, description="The same while working through a backlog or idle."
    )
    lateness_minutes: float = Field(
        60.0, ge=0, description="Events older than this (event time) raise no current alert."
    )
    vitals_fresh_minutes: float = Field(60.0, gt=0, description="Vitals used for scores.")
    dedupe_window: int = Field(32, ge=1, le=1024, description="Recent event ids per patient.")
    alert_hold_minutes: float = Field(15.0, ge=0, description="Clear this long to resolve.")
    alert_cooldown_minutes: float = Field(15.0, ge=0, description="No re-open after resolve.")
    ack_silence_minutes: float = Field(60.0, ge=0, description="An ack silences reminders.")
    reminder_minutes: float = Field(15.0, gt=0, description="Reminder interval, high alerts.")
    stale_after_minutes: float = Field(240.0, gt=0, description="No vitals -> stale alert.")
    stale_scan_seconds: float = Field(60.0, gt=0, description="Event-time between scans.")
    risk_every_minutes: float = Field(
        15.0, ge=0, description="Score risk/anomaly at most this often per twin (event time)."
    )
    checkpoint_seconds: float = Field(
        30.0, gt=0, description="Wall time between checkpoints of shared models."
    )
    gc_full_minutes: float = Field(
        60.0,
        ge=0,
        description="A full garbage collection of the worker's heap this often (0: Python's"
        " own schedule, which walks every hot twin every minute or two on a busy feed).",
    )

    # --- API ---------------------------------------------------------------
    api_host: str = "127.0.0.1"
    api_port: int = 8080
    api_token: SecretStr | None = None
    api_alert_buffer: int = Field(1000, ge=1, description="Recent alerts the API keeps.")
    population_min_group: int = Field(
        5, ge=1, description="Population groups smaller than this are suppressed."
    )
    worker_metrics_port: int | None = Field(
        None, description="Serve the worker's Prometheus metrics on this port."
    )

    def input_topics(self) -> tuple[str, ...]:
        """Topics the twin updater consumes, co-partitioned by ``patient_id``."""
        return (
            self.topic_vitals,
            self.topic_labs,
            self.topic_wearables,
            self.topic_profiles,
            self.topic_fhir,
            self.topic_alert_acks,
            self.topic_outcomes,
        )

    def redis_password_value(self) -> str | None:
        """The Redis password, for the client only."""
        return self.redis_password.get_secret_value() if self.redis_password else None

    def twin_config(self) -> TwinConfig:
        """The pure core's configuration, from these settings."""
        return TwinConfig(
            lateness_s=self.lateness_minutes * 60,
            fresh_s=self.vitals_fresh_minutes * 60,
            dedupe_window=self.dedupe_window,
            hold_s=self.alert_hold_minutes * 60,
            cooldown_s=self.alert_cooldown_minutes * 60,
            ack_silence_s=self.ack_silence_minutes * 60,
            continuous_reminder_s=self.reminder_minutes * 60,
            stale_after_s=self.stale_after_minutes * 60,
        )


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read once."""
    return Settings()
