"""LiteLLM proxy: the config of one run and how its process is started.

What LiteLLM needs to start here with no database and no network:

- no ``database_url`` in the config and no ``DATABASE_URL`` in its environment (it would
  run ``prisma`` migrations); the master key then works on its own;
- ``LITELLM_LOCAL_MODEL_COST_MAP=True``, or it fetches the model cost map from the
  internet at import;
- ``LITELLM_MODE=PRODUCTION``, or it loads a stray ``.env`` file (``load_dotenv``);
- ``--telemetry False`` on the command line (the flag exists in the proxy CLI);
- ``LITELLM_LOG=WARNING`` (its default level too): INFO logs several lines per request,
  which would bill the gateway for our log and fill the run's log.

The master key is not written into the config file: the file names an environment variable
(``os.environ/LITELLM_MASTER_KEY``, LiteLLM's own indirection) and only the child's
environment holds the key, so the config can be kept with a run's artefacts.

Every deployment gets its own upstream key, so per-deployment client caches hold one
client per deployment, as in production. A user's own config (``config_file``) is copied
with its folder (LiteLLM loads callback modules from the config's folder) and keeps all its
settings; only each deployment's provider credentials and address are replaced.
"""

from __future__ import annotations

import copy
import os
import shutil
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import yaml

from observatory.errors import InputError
from observatory.load.lifecycle import fleet_names
from observatory.settings import GatewaySettings

MASTER_KEY_ENV = "LITELLM_MASTER_KEY"
UPSTREAM_API_KEY = "sk-mock-upstream"  # the mock upstream accepts any key
READINESS_PATHS = ("/health/liveliness",)
OWN_DIR = "gateway-config"  # the copy of a user's config folder, in the run directory
# Providers a user's deployment may name: what the mock upstream speaks, the api_base suffix.
PROVIDERS = {"openai": "/v1", "anthropic": ""}
# A deployment's own address and credentials: replaced by the mock's.
_CREDENTIALS = frozenset(
    {"api_key", "api_base", "base_url", "organization", "api_version", "azure_ad_token"}
)
_ENV_REF = "os.environ/"
_NOT_COPIED = shutil.ignore_patterns(".git", "__pycache__", "*.pyc", ".venv", "venv")

# Environment every LiteLLM process gets; GatewaySettings.env may add to or override it.
BASE_ENV = {
    "LITELLM_LOCAL_MODEL_COST_MAP": "True",
    "LITELLM_MODE": "PRODUCTION",
    # INFO writes several lines per request: gateway CPU spent on our log, not on serving.
    "LITELLM_LOG": "WARNING",
}


def model_entry(name: str, upstream_url: str) -> dict[str, Any]:
    """One model_list entry routing ``name`` to the mock upstream.

    ``claude*`` models use LiteLLM's Anthropic provider against the mock's own
    ``/v1/messages`` (so /v1/messages requests pass through natively and chat requests are
    translated); names with ``embed`` are embedding models; everything else is an
    OpenAI-compatible chat model.
    """
    provider = "anthropic" if name.startswith("claude") else "openai"
    params = _mock_params(provider, name, upstream_url, f"{UPSTREAM_API_KEY}-{name}")
    entry: dict[str, Any] = {"model_name": name, "litellm_params": params}
    if "embed" in name:
        entry["model_info"] = {"mode": "embedding"}
    return entry


def _mock_params(provider: str, model: str, upstream_url: str, key: str) -> dict[str, Any]:
    # LiteLLM's Anthropic provider appends /v1/messages to api_base itself.
    base = upstream_url.rstrip("/") + PROVIDERS[provider]
    return {"model": f"{provider}/{model}", "api_base": base, "api_key": key}


def proxy_config(gateway: GatewaySettings, upstream_url: str) -> dict[str, Any]:
    """The proxy config of one run: the user's own or models, master key, ``proxy_config``.

    The fleet is added last, so a ``proxy_config`` with its own model_list keeps it too.
    """
    if gateway.config_file is not None:
        config = own_config(gateway, upstream_url)
    else:
        config = {
            "model_list": [model_entry(name, upstream_url) for name in gateway.models],
            "general_settings": {"master_key": f"{_ENV_REF}{MASTER_KEY_ENV}"},
            "litellm_settings": {"telemetry": False},
        }
    config = deep_merge(config, gateway.proxy_config)
    fleet = [model_entry(name, upstream_url) for name in fleet_names(gateway.fleet or 0)]
    config["model_list"] = [*config.get("model_list", []), *fleet]
    return config


def own_config(gateway: GatewaySettings, upstream_url: str) -> dict[str, Any]:
    """The user's config with every deployment pointed at the mock; InputError if it cannot."""
    assert gateway.config_file is not None
    config = _read(gateway.config_file)
    where = f"config_file {gateway.config_file.name}"
    general = dict(_section(config, "general_settings", where))
    if "database_url" in general and "DATABASE_URL" not in gateway.env:
        raise InputError(
            f"{where}: general_settings.database_url needs a database the gateway may use: "
            "set the gateway's env DATABASE_URL, or remove database_url"
        )
    deployments = config.get("model_list")
    if not isinstance(deployments, list) or not deployments:
        raise InputError(f"{where}: model_list: expected a non-empty list of deployments")
    general["master_key"] = f"{_ENV_REF}{MASTER_KEY_ENV}"  # the load generator's key
    return {
        **config,
        "model_list": [
            _point_at_mock(entry, i, upstream_url, where) for i, entry in enumerate(deployments)
        ],
        "general_settings": general,
        "litellm_settings": {**_section(config, "litellm_settings", where), "telemetry": False},
    }


def check_own_config(gateway: GatewaySettings) -> None:
    """Raise InputError naming what a user's config has that cannot be rewritten."""
    own_config(gateway, "http://127.0.0.1:1")


def _read(path: Path) -> dict[str, Any]:
    try:
        config = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise InputError(f"config_file {str(path)!r}: cannot read it: {exc.strerror}") from None
    except yaml.YAMLError as exc:  # its text would quote the line, which may hold a secret
        mark = getattr(exc, "problem_mark", None)
        line = f" at line {mark.line + 1}" if mark is not None else ""
        raise InputError(f"config_file {str(path)!r}: not valid YAML{line}") from None
    if not isinstance(config, dict):
        raise InputError(f"config_file {str(path)!r}: expected a LiteLLM config (a mapping)")
    return config


def _section(config: Mapping[str, Any], name: str, where: str) -> dict[str, Any]:
    value = config.get(name) or {}
    if not isinstance(value, dict):
        raise InputError(f"{where}: {name}: expected a mapping")
    return value


def _point_at_mock(entry: object, index: int, upstream_url: str, where: str) -> dict[str, Any]:
    """One deployment with the mock's address and a key of its own; the rest as configured."""
    field = f"{where}: model_list[{index}]"
    params = entry.get("litellm_params") if isinstance(entry, dict) else None
    model = params.get("model") if isinstance(params, dict) else None
    if not isinstance(entry, dict) or not isinstance(params, dict) or not isinstance(model, str):
        raise InputError(f"{field}: expected model_name and litellm_params.model")
    provider, _, rest = model.partition("/")
    if not rest:  # LiteLLM infers the provider of a bare model name
        provider, rest = ("anthropic" if model.startswith("claude") else "openai"), model
    if provider not in PROVIDERS:
        raise InputError(
            f"{field} ({entry.get('model_name')}): provider {provider!r} cannot be pointed at "
            f"the mock upstream; accepted: {', '.join(p + '/...' for p in PROVIDERS)}"
        )
    kept = {k: v for k, v in params.items() if k not in _CREDENTIALS}
    mock = _mock_params(provider, rest, upstream_url, f"{UPSTREAM_API_KEY}-{index}")
    return {**entry, "litellm_params": {**kept, **mock}}


def config_path(gateway: GatewaySettings, default: Path) -> Path:
    """Where a run's config goes: ``default``, or in the copy of the user's config folder."""
    if gateway.config_file is None:
        return default
    return default.parent / OWN_DIR / gateway.config_file.name


def write_run_config(gateway: GatewaySettings, upstream_url: str, path: Path) -> Path:
    """Write the run's config to ``path``, after copying the user's config folder there."""
    if gateway.config_file is not None:
        source = gateway.config_file.parent
        shutil.copytree(source, path.parent, ignore=_NOT_COPIED, dirs_exist_ok=True)
    return write_config(proxy_config(gateway, upstream_url), path)


def secrets(gateway: GatewaySettings) -> list[str]:
    """Secret values a user's config holds or names: kept out of the gateway's log."""
    if gateway.config_file is None:
        return []
    environ = {**os.environ, **gateway.env}
    found = set()
    for key, value in _strings(_read(gateway.config_file)):
        if value.startswith(_ENV_REF):
            found.add(environ.get(value.removeprefix(_ENV_REF), ""))
        elif key in ("api_key", "master_key", "database_url") or "secret" in key:
            found.add(value)
    return sorted(v for v in found if len(v) >= 4)


def _strings(node: object, key: str = "") -> Iterator[tuple[str, str]]:
    if isinstance(node, dict):
        for k, v in node.items():
            yield from _strings(v, str(k))
    elif isinstance(node, list):
        for item in node:
            yield from _strings(item, key)
    elif isinstance(node, str):
        yield key, node


def deep_merge(base: Mapping[str, Any], overlay: Mapping[str, Any]) -> dict[str, Any]:
    """Mappings merge key by key; any other value (lists included) in ``overlay`` wins."""
    merged = copy.deepcopy(dict(base))
    for key, value in overlay.items():
        current = merged.get(key)
        if isinstance(current, Mapping) and isinstance(value, Mapping):
            merged[key] = deep_merge(current, value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def write_config(config: Mapping[str, Any], path: Path) -> Path:
    """Write the config as YAML, readable by its owner only."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        yaml.safe_dump(dict(config), handle, sort_keys=False)
    return path


def argv(venv: Path, config: Path, port: int, num_workers: int) -> list[str]:
    """The proxy command line; ``--num_workers`` only when more than one is asked for."""
    args = [
        str(venv / "bin" / "litellm"),
        "--config",
        str(config),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--telemetry",
        "False",
    ]
    if num_workers > 1:
        args += ["--num_workers", str(num_workers)]
    return args


def env(gateway: GatewaySettings) -> dict[str, str]:
    """Variables for the proxy process (added to a scrubbed copy of ours by the caller)."""
    return {
        **BASE_ENV,
        **gateway.env,
        MASTER_KEY_ENV: gateway.master_key.get_secret_value(),
    }
