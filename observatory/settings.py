"""One validated Settings object, built once at start-up.

Sources, later wins: built-in defaults, the YAML file (default ``observatory.yaml``,
overridden by ``--config`` or ``OBSERVATORY_CONFIG``), then environment variables
``OBSERVATORY_<FIELD>`` with ``__`` between nested keys
(``OBSERVATORY_SLACK__WEBHOOK_URL``, ``OBSERVATORY_SERVICE__API_TOKEN``).
Durations are human strings ("90s", "1h30m") stored as seconds.
"""

from __future__ import annotations

import contextlib
import hashlib
import ipaddress
import json
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    SecretStr,
    Tag,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from observatory.builds.spec import parse_pip_spec
from observatory.domain import Channel
from observatory.durations import parse_duration
from observatory.errors import ConfigError, InputError
from observatory.faults.params import fault_params
from observatory.faults.timeline import check_timeline
from observatory.plaintext import check_plain

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CONFIG = Path("observatory.yaml")
ENV_PREFIX = "OBSERVATORY_"
SECRET_FIELDS = frozenset(
    {"webhook_url", "token", "api_token", "database_url", "master_key", "env"}
)
MIN_TOKEN_CHARS = 16
MIN_INTERVAL_S = 1.0
CRON_ACCEPTED = (
    "5 fields in UTC: minute 0-59, hour 0-23, day 1-31, month 1-12, weekday 0-6 or mon-sun "
    "(each '*', a value, a range a-b, a list a,b or a step */n), e.g. '0 3 * * *'"
)
_URL_CREDENTIALS = re.compile(r"(?i)\b([a-z][a-z0-9+.\-]*://)[^/\s@]*@")

METRICS = (
    "latency_p50",
    "latency_p95",
    "latency_p99",
    "ttft_p50",
    "ttft_p99",
    "inter_chunk_p99",
    "overhead_p50",
    "overhead_p99",
    "error_rate",
    "throughput",
    "late_rate",
    "memory_slope",
    "memory_level",
    "cpu",
    "log_bytes_per_request",
    "cpu_per_request",
)
RENAMED = {"memory_peak": "memory_level"}  # old threshold keys, named in the error


def _duration(value: object) -> float:
    try:
        return parse_duration(value)
    except InputError as exc:
        raise ValueError(str(exc)) from None


Duration = Annotated[float, BeforeValidator(_duration)]
Fraction = Annotated[float, Field(ge=0.0, le=1.0)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class LatencyModel(_Model):
    """Service time of one mock upstream response (non-streaming) or before the first chunk."""

    distribution: Literal["fixed", "normal", "lognormal"] = "lognormal"
    mean: Duration = 0.05
    stddev: Duration = 0.01


class StreamModel(_Model):
    ttft: Duration = 0.1
    chunks: int = Field(default=20, ge=1, le=10_000)
    chunk_delay: Duration = 0.02


ErrorCode = Literal[429, 500, 503]
AlertKind = Literal["regression", "crash", "abort", "inconclusive", "pass", "error"]


DEFAULT_NOTIFY_ON: tuple[AlertKind, ...] = ("regression", "crash", "abort", "inconclusive", "error")


def _default_notify_on() -> list[AlertKind]:
    return list(DEFAULT_NOTIFY_ON)


class FaultKnobs(_Model):
    """Faults the mock upstream injects; also settable at run time via its admin endpoint."""

    error_rate: Fraction = 0.0
    error_codes: list[ErrorCode] = Field(default_factory=lambda: list[ErrorCode]([500]))
    added_latency: Duration = 0.0
    stall_rate: Fraction = 0.0
    stall: Duration = 0.0
    reset_rate: Fraction = 0.0


class UpstreamSettings(_Model):
    host: str = "127.0.0.1"
    port: int = Field(default=0, ge=0, le=65535)
    seed: int | None = None
    latency: LatencyModel = LatencyModel()
    stream: StreamModel = StreamModel()
    faults: FaultKnobs = FaultKnobs()


class GatewaySettings(_Model):
    """How a kind of gateway is configured and started."""

    kind: Literal["litellm", "openai"] = "litellm"
    package: str = "litellm[proxy]"
    models: list[str] = Field(
        default_factory=lambda: [
            "gpt-4o-mini",
            "gpt-4o",
            "claude-3-5-haiku",
            "text-embedding-3-small",
        ]
    )
    num_workers: int = Field(default=1, ge=1, le=64)
    readiness_timeout: Duration = 120.0
    master_key: SecretStr = SecretStr("sk-observatory-local")
    proxy_config: dict[str, Any] = Field(default_factory=dict)
    env: dict[str, str] = Field(default_factory=dict)
    cpu_affinity: list[int] | None = None
    timing_header: str | None = "x-litellm-overhead-duration-ms"
    # extra chat deployments fleet-001..fleet-N (the lifecycle scenario's fleet); None: none
    fleet: int | None = Field(default=None, ge=1, le=999)
    # the user's own LiteLLM config (copied with its folder, pointed at the mock upstream)
    config_file: Path | None = None

    @model_validator(mode="after")
    def _own_config(self) -> GatewaySettings:
        if self.config_file is None:
            return self
        if self.kind != "litellm":
            raise ValueError("config_file: only a LiteLLM config can be rewritten (kind: litellm)")
        from observatory.builds.litellm import check_own_config  # builds import settings

        try:
            check_own_config(self)
        except InputError as exc:
            raise ValueError(str(exc)) from None
        return self


class BuildSettings(_Model):
    """A gateway build: exactly one of pip, command or url."""

    gateway: str
    pip: str | None = None
    command: str | None = None
    url: str | None = None
    version: str | None = None
    channel: Channel = Channel.CANDIDATE

    @field_validator("pip")
    @classmethod
    def _exact_pip(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                parse_pip_spec(value)
            except InputError as exc:
                raise ValueError(str(exc)) from None
        return value

    @field_validator("command")
    @classmethod
    def _known_placeholders(cls, value: str | None) -> str | None:
        if value is not None:
            unknown = set(re.findall(r"{([^}]*)}", value)) - {"host", "port", "config"}
            if unknown:
                raise ValueError(
                    f"unknown placeholder(s) {', '.join(sorted(unknown))}; "
                    "accepted: {host}, {port}, {config}"
                )
        return value

    @model_validator(mode="after")
    def _one_source(self) -> BuildSettings:
        given = [k for k in ("pip", "command", "url") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError(f"give exactly one of pip, command, url (got {given or 'none'})")
        if self.url is not None and not re.match(r"^https?://[^/\s]+", self.url):
            raise ValueError(f"url {redact_url(self.url)!r} must start with http:// or https://")
        return self

    @property
    def source(self) -> str:
        """What the build runs, safe to print or store: a URL's credentials are redacted."""
        if self.url is not None:
            return redact_url(self.url)
        return self.pip or self.command or ""

    @property
    def resolved_version(self) -> str:
        if self.pip is not None:
            return parse_pip_spec(self.pip).version
        return self.version or "unversioned"


class ClosedProfile(_Model):
    """Closed model: a fixed number of users, each waiting between requests."""

    model: Literal["closed"] = "closed"
    users: int = Field(ge=1, le=100_000)
    spawn_rate: float = Field(default=10.0, gt=0)
    wait_min: Duration = 0.0
    wait_max: Duration = 0.0

    @model_validator(mode="after")
    def _wait_order(self) -> ClosedProfile:
        if self.wait_max < self.wait_min:
            raise ValueError("wait_max must be >= wait_min")
        return self


class OpenProfile(_Model):
    """Open model: requests arrive at a rate whatever the gateway does."""

    model: Literal["open"]
    rate: float = Field(gt=0, le=100_000, description="requests per second")
    arrival: Literal["constant", "poisson"] = "poisson"
    max_in_flight: int = Field(default=200, ge=1)


def _profile_model(value: object) -> str | None:
    # "model" may be left out: a profile without one is the closed model.
    if isinstance(value, dict):
        return str(value.get("model", "closed"))
    return getattr(value, "model", None)


Profile = Annotated[
    Annotated[ClosedProfile, Tag("closed")] | Annotated[OpenProfile, Tag("open")],
    Discriminator(
        _profile_model,
        custom_error_type="profile_model",
        custom_error_message="model must be 'closed' or 'open'",
    ),
]

FaultName = Literal[
    "redis_slow",
    "redis_down",
    "provider_slow",
    "provider_errors",
    "provider_stall",
    "control_plane",
]


class PhaseSettings(_Model):
    """At ``at`` into the run inject ``fault`` for ``duration``, then recover."""

    at: Duration
    fault: FaultName
    duration: Duration
    params: dict[str, Any] = Field(default_factory=dict, validate_default=True)

    @field_validator("duration")
    @classmethod
    def _positive(cls, value: float) -> float:
        if value <= 0:
            raise ValueError("a phase needs a positive duration")
        return value

    @field_validator("params")
    @classmethod
    def _fault_params(cls, value: dict[str, Any], info: ValidationInfo) -> dict[str, Any]:
        fault = info.data.get("fault")  # absent when the fault name itself was refused
        return fault_params(fault, value) if fault is not None else value


class MetricThreshold(_Model):
    """A practical threshold: relative change (0.10 = +10 %) and/or absolute change."""

    relative: float | None = Field(default=None, ge=0)
    absolute: float | None = Field(default=None, ge=0)


def _known_metrics(value: dict[str, MetricThreshold]) -> dict[str, MetricThreshold]:
    unknown = sorted(set(value) - set(METRICS))
    if unknown:
        renamed = "".join(f" ({old} is now {RENAMED[old]})" for old in unknown if old in RENAMED)
        raise ValueError(
            f"unknown metric(s) {', '.join(unknown)}{renamed}; known: {', '.join(METRICS)}"
        )
    return value


ThresholdMap = Annotated[dict[str, MetricThreshold], Field(default_factory=dict)]


class ScenarioSettings(_Model):
    file: str
    profile: Profile
    duration: Duration = 600.0
    warmup: Duration = 60.0
    window: Duration = 10.0
    processes: int = Field(default=1, ge=1, le=256)
    params: dict[str, Any] = Field(default_factory=dict)
    thresholds: ThresholdMap
    phases: list[PhaseSettings] = Field(default_factory=list)

    _check_metrics = field_validator("thresholds")(_known_metrics)

    @model_validator(mode="after")
    def _coherent(self) -> ScenarioSettings:
        if self.duration < 1:
            raise ValueError("duration must be at least 1s")
        if self.warmup >= self.duration:
            raise ValueError(
                f"warmup ({self.warmup:g}s) must be shorter than duration ({self.duration:g}s)"
            )
        if not 1 <= self.window <= 3600:
            raise ValueError("window must be between 1s and 1h")
        check_timeline(self.phases, self.duration, self.warmup)
        return self


class ThresholdSettings(_Model):
    fdr: float = Field(default=0.05, gt=0, lt=1, description="Benjamini-Hochberg q")
    error_rate_ceiling: Fraction = 0.01
    min_windows: int = Field(default=12, ge=3)
    neighbour_cpu: float | None = Field(
        default=0.5, gt=0, description="cores other processes may use before a window is set aside"
    )
    host_speed: float | None = Field(
        default=0.05, gt=0, description="share by which host speed may differ from the baseline's"
    )
    metrics: ThresholdMap

    _check_metrics = field_validator("metrics")(_known_metrics)


class BaselineSettings(_Model):
    policy: Literal["reuse", "rerun", "alongside"] = "reuse"
    max_age: Duration = 30 * 86400.0
    stable_tag_pattern: str | None = r"^v?\d+\.\d+\.\d+$"

    @field_validator("stable_tag_pattern")
    @classmethod
    def _compiles(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                re.compile(value)
            except re.error as exc:
                raise ValueError(f"not a regular expression: {exc}") from None
        return value


class ScheduleSettings(_Model):
    cron: str | None = None
    interval: Duration | None = None
    build: str
    scenarios: list[str] = Field(min_length=1)
    duration: Duration | None = None
    tag: str | None = None

    @field_validator("tag")
    @classmethod
    def _plain_tag(cls, value: str | None) -> str | None:
        return _plain("tag", value)

    @field_validator("cron")
    @classmethod
    def _cron(cls, value: str | None) -> str | None:
        if value is not None:
            check_cron(value)
        return value

    @field_validator("interval")
    @classmethod
    def _interval(cls, value: float | None) -> float | None:
        if value is not None and value < MIN_INTERVAL_S:
            raise ValueError(f"must be at least {MIN_INTERVAL_S:g}s (got {value:g}s)")
        return value

    @model_validator(mode="after")
    def _one_trigger(self) -> ScheduleSettings:
        if (self.cron is None) == (self.interval is None):
            raise ValueError("give exactly one of cron or interval")
        return self


def check_cron(text: str) -> None:
    """Raise ValueError unless ``text`` is a crontab line the scheduler accepts."""
    from apscheduler.triggers.cron import CronTrigger  # the scheduler's own parser

    if len(text.split()) != 5:
        raise ValueError(f"needs 5 fields, got {len(text.split())}; accepted: {CRON_ACCEPTED}")
    try:
        CronTrigger.from_crontab(text, timezone="UTC")
    except ValueError as exc:
        raise ValueError(f"not a valid cron line ({exc}); accepted: {CRON_ACCEPTED}") from None


def _plain(field: str, value: str | None) -> str | None:
    try:
        return check_plain(field, value)
    except InputError as exc:
        raise ValueError(str(exc).removeprefix(f"{field}: ")) from None


class SlackSettings(_Model):
    webhook_url: SecretStr | None = None
    token: SecretStr | None = None
    channel: str | None = None
    notify_on: list[AlertKind] = Field(default_factory=_default_notify_on)
    timeout: Duration = 10.0
    give_up_after: Duration = 3600.0
    retry_initial: Duration = 5.0  # first backoff delay; doubles per attempt, with jitter
    retry_max: Duration = 300.0
    api_url: str = "https://slack.com/api/"

    @model_validator(mode="after")
    def _channel_with_token(self) -> SlackSettings:
        if self.token is not None and not self.channel:
            raise ValueError("a bot token needs a channel")
        return self

    @property
    def configured(self) -> bool:
        return self.webhook_url is not None or self.token is not None


class ServiceSettings(_Model):
    host: str = "127.0.0.1"
    port: int = Field(default=8700, ge=0, le=65535)
    api_token: SecretStr | None = None
    read_auth: bool = False
    load_slots: int = Field(default=1, ge=1, le=16)
    lease: Duration = 60.0
    heartbeat: Duration = 10.0
    public_base_url: str = "http://127.0.0.1:8700"

    @field_validator("api_token")
    @classmethod
    def _long_token(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value().strip()) < MIN_TOKEN_CHARS:
            raise ValueError(
                f"must be at least {MIN_TOKEN_CHARS} characters (value not shown); "
                "generate one with: openssl rand -hex 24"
            )
        return value


class RetentionSettings(_Model):
    windows_after: Duration = 30 * 86400.0
    coarse_window: Duration = 600.0


class AbortSettings(_Model):
    """Catastrophic conditions that end a run early."""

    error_rate: Fraction = 0.2
    sustained: Duration = 120.0
    on_crash: bool = True


class LoadSettings(_Model):
    master_host: str = "127.0.0.1"
    cpu_affinity: list[int] | None = None
    saturation_cpu: float = Field(default=0.85, gt=0, le=1)
    sample_interval: Duration = 5.0


class Settings(_Model):
    data_dir: Path = Path("data")
    database_url: SecretStr | None = None
    cache_dir: Path = Path.home() / ".cache" / "observatory"
    scenarios_dir: Path = PROJECT_ROOT / "scenarios"
    allowed_targets: list[str] = Field(default_factory=list)
    upstream: UpstreamSettings = UpstreamSettings()
    gateways: dict[str, GatewaySettings] = Field(
        default_factory=lambda: {"litellm": GatewaySettings()}
    )
    builds: dict[str, BuildSettings] = Field(default_factory=dict)
    scenarios: dict[str, ScenarioSettings] = Field(default_factory=dict)
    schedules: dict[str, ScheduleSettings] = Field(default_factory=dict)
    thresholds: ThresholdSettings = ThresholdSettings(metrics={})
    baseline: BaselineSettings = BaselineSettings()
    slack: SlackSettings = SlackSettings()
    service: ServiceSettings = ServiceSettings()
    retention: RetentionSettings = RetentionSettings()
    abort: AbortSettings = AbortSettings()
    load: LoadSettings = LoadSettings()

    @field_validator("database_url")
    @classmethod
    def _database_scheme(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None:
            return None
        url = value.get_secret_value()
        if url.startswith(("postgres://", "postgresql://")):
            url = "postgresql+psycopg://" + url.split("://", 1)[1]
        accepted = (
            "accepted: sqlite:///PATH or postgresql://USER@HOST[:PORT]/DB "
            "(value not shown: it may hold a password)"
        )
        if not re.match(r"^(sqlite:///.+|postgresql\+psycopg://.+)$", url):
            raise ValueError(accepted)
        if url.startswith("postgresql") and not _valid_port(url):
            raise ValueError(f"the port must be a number 1-65535; {accepted}")
        return SecretStr(url)

    @field_validator("allowed_targets")
    @classmethod
    def _targets(cls, value: list[str]) -> list[str]:
        for target in value:
            if not re.fullmatch(r"[A-Za-z0-9.\-:/\[\]]+", target):
                raise ValueError(f"{target!r} is not a host name, IP address or CIDR")
        return value

    @model_validator(mode="after")
    def _references(self) -> Settings:
        _check_refs(self)
        return self

    @property
    def db_url(self) -> str:
        """The database URL with its secret; for the engine only, never for output."""
        if self.database_url is not None:
            return self.database_url.get_secret_value()
        return f"sqlite:///{(self.data_dir / 'observatory.db').resolve()}"

    def scenario(self, name: str) -> ScenarioSettings:
        try:
            return self.scenarios[name]
        except KeyError:
            known = ", ".join(sorted(self.scenarios)) or "none configured"
            raise InputError(f"unknown scenario {name!r}; known: {known}") from None

    def build(self, name: str) -> BuildSettings:
        try:
            return self.builds[name]
        except KeyError:
            known = ", ".join(sorted(self.builds)) or "none configured"
            raise InputError(f"unknown build {name!r}; known: {known}") from None


def _check_refs(settings: Settings) -> None:
    for name, build in settings.builds.items():
        if build.gateway not in settings.gateways:
            raise ValueError(
                f"builds.{name}.gateway: unknown gateway {build.gateway!r}; "
                f"known: {', '.join(sorted(settings.gateways))}"
            )
    for name, scenario in settings.scenarios.items():
        if not (settings.scenarios_dir / scenario.file).is_file():
            raise ValueError(
                f"scenarios.{name}.file: {scenario.file!r} not found in {settings.scenarios_dir}"
            )
    for name, schedule in settings.schedules.items():
        if schedule.build not in settings.builds and schedule.build != "newest-candidate":
            raise ValueError(
                f"schedules.{name}.build: unknown build {schedule.build!r}; "
                f"known: newest-candidate, {', '.join(sorted(settings.builds))}"
            )
        for wanted in schedule.scenarios:
            if wanted not in settings.scenarios:
                raise ValueError(
                    f"schedules.{name}.scenarios: unknown scenario {wanted!r}; "
                    f"known: {', '.join(sorted(settings.scenarios))}"
                )


def _valid_port(url: str) -> bool:
    try:
        port = urlsplit(url).port
    except ValueError:
        return False
    return port is None or port > 0


def redact_url(url: str) -> str:
    """``url`` with any ``user:password@`` replaced by ``<redacted>@``."""
    return _URL_CREDENTIALS.sub(r"\1<redacted>@", url)


def check_targets(settings: Settings) -> None:
    """Raise ConfigError when a URL build points outside loopback and ``allowed_targets``."""
    for name, build in sorted(settings.builds.items()):
        if build.url is None:
            continue
        host = urlsplit(build.url).hostname or ""
        if not is_allowed_target(host, settings.allowed_targets):
            allowed = ", ".join(["loopback", *settings.allowed_targets])
            raise ConfigError(
                f"builds.{name}.url: host {host!r} is not an allowed target; accepted: "
                f"{allowed} (add the host to allowed_targets to load it)"
            )


def is_allowed_target(host: str, allowed: list[str]) -> bool:
    """True for loopback or for a host listed (by name, address or CIDR) in ``allowed``."""
    host = host.strip("[]")
    if host == "localhost":
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return host in allowed
    if address.is_loopback:
        return True
    for entry in allowed:
        try:
            if address in ipaddress.ip_network(entry.strip("[]"), strict=False):
                return True
        except ValueError:
            continue
    return False


def load_settings(path: Path | None = None, environ: Mapping[str, str] | None = None) -> Settings:
    """Build the Settings from the YAML file and the environment; raise ConfigError."""
    env = dict(os.environ if environ is None else environ)
    explicit = path is not None or f"{ENV_PREFIX}CONFIG" in env
    config_path = path or Path(env.get(f"{ENV_PREFIX}CONFIG", str(DEFAULT_CONFIG)))
    data = _read_yaml(config_path, required=explicit)
    _overlay_env(data, env)
    _resolve_paths(data, config_path.parent if config_path.is_file() else Path.cwd())
    try:
        return Settings.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_describe(config_path, exc)) from None


def _read_yaml(path: Path, *, required: bool) -> dict[str, Any]:
    if not path.is_file():
        if required:
            raise ConfigError(f"{path}: config file not found")
        return {}
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ConfigError(
            f"{path}: not valid YAML{where}: {getattr(exc, 'problem', exc)}"
        ) from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the top level must be a mapping, got {type(data).__name__}")
    return data


def _overlay_env(data: dict[str, Any], env: Mapping[str, str]) -> None:
    for key, value in env.items():
        if not key.startswith(ENV_PREFIX) or key == f"{ENV_PREFIX}CONFIG":
            continue
        parts = key[len(ENV_PREFIX) :].lower().split("__")
        node = data
        for part in parts[:-1]:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                break
            node = child
        else:
            node[parts[-1]] = value


def _describe(path: Path, exc: ValidationError) -> str:
    lines = [f"{path}: invalid configuration ({exc.error_count()} problem(s))"]
    for error in exc.errors():
        loc = ".".join(str(p) for p in error["loc"] if not str(p).startswith("function-"))
        secret = any(str(p) in SECRET_FIELDS for p in error["loc"])
        value = "<redacted>" if secret else _short(_redact(error.get("input")))
        message = error["msg"].removeprefix("Value error, ")
        if error["type"] == "extra_forbidden":
            message = "unknown key"
        # Cross-reference errors have no location: their message names the field itself.
        lines.append(f"  {loc}: {message} (got {value})" if loc else f"  {message}")
    return "\n".join(lines)


def _redact(value: object) -> object:
    if isinstance(value, dict):
        return {k: "<redacted>" if k in SECRET_FIELDS else _redact(v) for k, v in value.items()}
    return value


def _short(value: object) -> str:
    text = redact_url(repr(value))
    return text if len(text) <= 80 else text[:77] + "..."


def _resolve_paths(data: dict[str, Any], base: Path) -> None:
    """Relative paths in the file are relative to the file, not to the working directory."""
    data.setdefault("data_dir", "data")
    for key in ("data_dir", "cache_dir", "scenarios_dir"):
        _resolve(data, key, base)
    gateways = data.get("gateways")
    for gateway in gateways.values() if isinstance(gateways, dict) else ():
        if isinstance(gateway, dict):
            _resolve(gateway, "config_file", base)


def _resolve(data: dict[str, Any], key: str, base: Path) -> None:
    value = data.get(key)
    if isinstance(value, str) and value:
        path = Path(value).expanduser()
        data[key] = str(path if path.is_absolute() else (base / path).resolve())


def config_hash(settings: Settings) -> str:
    """A stable hash of what shapes the measurement (secrets excluded)."""
    payload = settings.model_dump(
        mode="json", include={"upstream", "gateways", "scenarios", "load"}, exclude_none=True
    )
    for gateway in payload.get("gateways", {}).values():
        gateway.pop("master_key", None)
        if gateway.get("config_file"):  # what the user configured, wherever the file lives
            with contextlib.suppress(OSError):
                own = Path(gateway["config_file"]).read_bytes()
                gateway["config_file"] = hashlib.sha256(own).hexdigest()
    blob = json.dumps(payload, sort_keys=True).encode()
    return hashlib.sha256(blob).hexdigest()[:16]
