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
"""

from __future__ import annotations

import copy
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from observatory.settings import GatewaySettings

MASTER_KEY_ENV = "LITELLM_MASTER_KEY"
UPSTREAM_API_KEY = "sk-mock-upstream"  # the mock upstream accepts any key
READINESS_PATHS = ("/health/liveliness",)

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
    base = upstream_url.rstrip("/")
    if name.startswith("claude"):
        # LiteLLM's Anthropic provider appends /v1/messages to api_base itself.
        params = {"model": f"anthropic/{name}", "api_base": base, "api_key": UPSTREAM_API_KEY}
        return {"model_name": name, "litellm_params": params}
    params = {"model": f"openai/{name}", "api_base": f"{base}/v1", "api_key": UPSTREAM_API_KEY}
    entry: dict[str, Any] = {"model_name": name, "litellm_params": params}
    if "embed" in name:
        entry["model_info"] = {"mode": "embedding"}
    return entry


def proxy_config(gateway: GatewaySettings, upstream_url: str) -> dict[str, Any]:
    """The proxy config of one run: models, master key reference, then ``proxy_config``."""
    config: dict[str, Any] = {
        "model_list": [model_entry(name, upstream_url) for name in gateway.models],
        "general_settings": {"master_key": f"os.environ/{MASTER_KEY_ENV}"},
        "litellm_settings": {"telemetry": False},
    }
    return deep_merge(config, gateway.proxy_config)


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
