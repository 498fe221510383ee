"""Configuration: one validated, frozen object built at start-up from TOML, environment and flags.

Precedence is file < environment (`RIVERGUARD_<SECTION>_<KEY>`) < flags. Unknown keys and bad
values are errors that name the key and where it came from.

>>> cfg = Config.build({"model": {"preset": "hoeffding_tree"}}, env={})
>>> cfg.model.preset, cfg.snapshots.every_events
('hoeffding_tree', 1000)
>>> Config.build({"modle": {}}, env={}, source="rg.toml")
Traceback (most recent call last):
...
stream.errors.ConfigError: rg.toml: unknown key [modle]
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
import typing
from pathlib import Path
from typing import Any, Literal, Mapping

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, create_model, model_validator

from drift.concept import BINARY_DETECTORS, REGRESSION_DETECTORS
from drift.guard import Guard, GuardSettings

from stream.errors import ConfigError

ENV_PREFIX = "RIVERGUARD_"


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ModelConfig(_Section):
    preset: str | None = None  # logistic_regression when neither preset nor factory is set
    factory: str | None = None  # "package.module:callable" returning a River model
    seed: int = 42

    @model_validator(mode="after")
    def _one_source(self) -> "ModelConfig":
        if self.factory is not None and self.preset is not None:
            raise ValueError("set either preset or factory, not both")
        return self

    @property
    def spec(self) -> str:
        """What builds the model, as recorded in snapshot metadata."""
        if self.factory is not None:
            return f"factory:{self.factory}"
        return self.preset or "logistic_regression"


def _guard_section() -> type[_Section]:
    """`[guard]` takes exactly the fields of `drift.guard.GuardSettings`: one list, kept there (and
    its checks: `Config.build_guard`)."""
    hints = typing.get_type_hints(GuardSettings)
    fields: dict[str, Any] = {}
    for f in dataclasses.fields(GuardSettings):
        default = f.default if f.default is not dataclasses.MISSING else Field(default_factory=f.default_factory)
        fields[f.name] = (hints[f.name], default)
    return create_model("GuardConfig", __base__=_Section, **fields)


GuardConfig = _guard_section()


class SnapshotsConfig(_Section):
    dir: Path = Path("./snapshots")
    every_events: int = Field(1000, ge=1)
    keep: int = Field(20, ge=1)
    key: str | None = None  # HMAC key; RIVERGUARD_SNAPSHOTS_KEY in production


class KafkaConfig(_Section):
    bootstrap_servers: str = "127.0.0.1:9092"
    topic: str = "events"
    labels_topic: str | None = None
    predictions_topic: str = "predictions"
    dead_letter_topic: str = "events-dlq"
    group_id: str = "riverguard"
    max_poll_records: int = Field(2000, ge=1)
    # Passed through to kafka-python for an existing cluster (SASL/SSL).
    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    sasl_mechanism: str | None = None
    sasl_plain_username: str | None = None
    sasl_plain_password: str | None = None
    ssl_cafile: str | None = None


class AdminConfig(_Section):
    enabled: bool = True
    host: str = "127.0.0.1"
    port: int = Field(8321, ge=0, le=65535)
    token: str | None = None  # RIVERGUARD_ADMIN_TOKEN in production
    public_reads: bool = False  # when true, GET endpoints need no token


class EventsConfig(_Section):
    id_field: str = "id"
    ts_field: str = "ts"
    x_field: str = "x"
    y_field: str = "y"
    max_bytes: int = Field(65536, ge=64)


class LabelsConfig(_Section):
    pending_max: int = Field(100_000, ge=1)
    ttl_seconds: float = Field(3600.0, gt=0)


class MetricsConfig(_Section):
    window: int = Field(1000, ge=1)  # rolling window of the live metric, in labeled events


class Config(_Section):
    model: ModelConfig = ModelConfig()
    guard: GuardConfig = GuardConfig()
    snapshots: SnapshotsConfig = SnapshotsConfig()
    kafka: KafkaConfig = KafkaConfig()
    admin: AdminConfig = AdminConfig()
    events: EventsConfig = EventsConfig()
    labels: LabelsConfig = LabelsConfig()
    metrics: MetricsConfig = MetricsConfig()
    # Where each key came from (file, environment variable, flag), for errors found after `build`.
    _origin: dict[tuple[str, str], str] = PrivateAttr(default_factory=dict)
    _source: str = PrivateAttr(default="<config>")

    def build_guard(self, classifier: bool, *, enabled: bool = True, history: int | None = 1000) -> Guard:
        """The guard for a model of this task. What its settings and detectors refuse (`GuardSettings`,
        `ConceptDetector` and River's constructors check them) is a configuration error naming the
        key and where it came from; `build` asks at start, and the model's task (a binary detector
        on a regressor's errors) is asked once the model is built."""
        detector = self.guard.detector
        if enabled and self.guard.enabled and not classifier and detector in BINARY_DETECTORS:
            raise ConfigError(
                f"{self._where('guard', 'detector')}: [guard] detector: {detector!r} watches 0/1 losses, "
                f"but the model ({self.model.spec}) is a regressor; use one of {', '.join(REGRESSION_DETECTORS)}")
        try:
            settings = GuardSettings(**{**self.guard.model_dump(), "enabled": enabled and self.guard.enabled})
            return Guard(settings, classifier=classifier, history=history)
        except TypeError as exc:  # River's detector constructors check their parameters' types
            raise ConfigError(f"{self._where('guard', 'detector_params')}: [guard] detector_params "
                              f"{self.guard.detector_params!r} for {detector}: {exc}") from None
        except ValueError as exc:  # "<key> must ...", or a detector's own message
            message = str(exc)
            key = next((f.name for f in dataclasses.fields(GuardSettings) if message.startswith(f"{f.name} ")), "")
            named = f"[guard] {key}: {message.removeprefix(key + ' ')}" if key else f"[guard] {message}"
            raise ConfigError(f"{self._where('guard', key)}: {named}") from None

    def _where(self, section: str, key: str) -> str:
        return self._origin.get((section, key), self._source)

    @classmethod
    def build(
        cls,
        data: Mapping[str, Any],
        *,
        env: Mapping[str, str] | None = None,
        overrides: Mapping[str, Mapping[str, Any]] | None = None,
        source: str = "<config>",
    ) -> "Config":
        """Merge file data, environment and flag overrides, then validate."""
        env = os.environ if env is None else env
        merged: dict[str, dict[str, Any]] = {}
        origin: dict[tuple[str, str], str] = {}
        for section, values in data.items():
            if section not in cls.model_fields:
                raise ConfigError(f"{source}: unknown key [{section}]")
            if not isinstance(values, Mapping):
                raise ConfigError(f"{source}: [{section}] must be a table, got {values!r}")
            merged[section] = dict(values)
            for key in values:
                origin[(section, key)] = source
        for section, key, value, name in _env_values(env):
            if section not in cls.model_fields:
                raise ConfigError(f"environment: unknown key {name} (no section [{section}])")
            merged.setdefault(section, {})[key] = value
            origin[(section, key)] = f"environment variable {name}"
        for section, values in (overrides or {}).items():
            for key, value in values.items():
                if value is not None:
                    merged.setdefault(section, {})[key] = value
                    origin[(section, key)] = "command-line flag"
        try:
            config = cls.model_validate(merged)
        except ValidationError as exc:
            raise ConfigError(_describe(exc, origin, source)) from None
        config._origin, config._source = origin, source
        config.build_guard(classifier=True)  # at start, what does not depend on the model's task
        return config

    @classmethod
    def load(
        cls,
        path: str | Path | None,
        *,
        env: Mapping[str, str] | None = None,
        overrides: Mapping[str, Mapping[str, Any]] | None = None,
    ) -> "Config":
        """Read a TOML file (or none: defaults), then apply environment and flag overrides."""
        data: dict[str, Any] = {}
        source = "<defaults>"
        if path is not None:
            source = str(path)
            try:
                data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
            except FileNotFoundError:
                raise ConfigError(f"{source}: no such config file") from None
            except tomllib.TOMLDecodeError as exc:
                raise ConfigError(f"{source}: not valid TOML: {exc}") from None
        return cls.build(data, env=env, overrides=overrides, source=source)

    def snapshot_key(self) -> bytes:
        """The HMAC key for snapshots; refusing to run unsigned is safer than a default key."""
        if not self.snapshots.key:
            raise ConfigError(
                "[snapshots] key is not set: set it in the config file or RIVERGUARD_SNAPSHOTS_KEY"
            )
        return self.snapshots.key.encode("utf-8")


def _env_values(env: Mapping[str, str]):
    """Yield (section, key, value, variable) for every RIVERGUARD_<SECTION>_<KEY> variable."""
    for name, value in env.items():
        if not name.startswith(ENV_PREFIX):
            continue
        rest = name[len(ENV_PREFIX):].lower()
        section, sep, key = rest.partition("_")
        if not sep or not key:
            continue
        yield section, key, value, name


def _describe(exc: ValidationError, origin: dict[tuple[str, str], str], source: str) -> str:
    lines = []
    for err in exc.errors():
        loc = [str(p) for p in err["loc"]]
        section = loc[0] if loc else ""
        key = loc[1] if len(loc) > 1 else ""
        where = origin.get((section, key), source)
        if err["type"] == "extra_forbidden":
            if len(loc) == 1:
                lines.append(f"{where}: unknown key [{section}]")
            else:
                lines.append(f"{where}: unknown key [{section}] {key}")
        else:
            name = f"[{section}] {key}".strip() if key else f"[{section}]"
            message = err["msg"].removeprefix("Value error, ")
            lines.append(f"{where}: {name}: {message} (got {err.get('input')!r})")
    return "; ".join(lines)
