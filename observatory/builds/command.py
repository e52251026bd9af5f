"""Command builds: a configured command template with {host}, {port} and {config}.

Templates come from the configuration file only (the HTTP API can name a configured build
but never supply a command). The template is split like a shell would split it, but no
shell runs it: each placeholder is substituted inside its own argument, so a config path
with spaces stays one argument and nothing is ever interpreted.
"""

from __future__ import annotations

import shlex
import string

from observatory.errors import InputError

PLACEHOLDERS = ("host", "port", "config")


def render_command(template: str, *, host: str, port: int, config: str) -> list[str]:
    """Split ``template`` into argv and fill the placeholders; InputError on anything else."""
    try:
        words = shlex.split(template)
    except ValueError as exc:
        raise InputError(f"command template {template!r} cannot be split: {exc}") from None
    if not words:
        raise InputError("command template is empty; expected e.g. 'my-gateway --port {port}'")
    values = {"host": host, "port": str(port), "config": config}
    return [_fill(word, template, values) for word in words]


def _fill(word: str, template: str, values: dict[str, str]) -> str:
    try:
        fields = list(string.Formatter().parse(word))
    except ValueError as exc:
        raise InputError(f"command template {template!r}: {exc}") from None
    out = []
    for literal, name, spec, conversion in fields:
        out.append(literal)
        if name is None:
            continue
        if name not in values or spec or conversion:
            shown = (
                "{"
                + name
                + (f"!{conversion}" if conversion else "")
                + (f":{spec}" if spec else "")
                + "}"
            )
            raise InputError(
                f"command template {template!r}: unknown placeholder {shown}; "
                "accepted: {host}, {port}, {config}"
            )
        out.append(values[name])
    return "".join(out)
