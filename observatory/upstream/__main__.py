"""``python -m observatory.upstream --settings-json JSON``: the child UpstreamServer starts.

Loopback only (the full CLI, ``observatory upstream``, also honours allowed_targets).
It bypasses the CLI group on purpose: that imports every command's dependencies
(pandas, scipy, SQLAlchemy), which costs seconds of start-up and memory in the mock.
"""

from __future__ import annotations

import argparse
import sys

from observatory.errors import InputError
from observatory.settings import is_allowed_target
from observatory.upstream.server import serve, settings_from_json


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m observatory.upstream")
    parser.add_argument("--settings-json", required=True, help="UpstreamSettings as JSON")
    args = parser.parse_args(argv)
    try:
        settings = settings_from_json(args.settings_json)
    except InputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if not is_allowed_target(settings.host, []):
        print(f"error: host {settings.host!r} is not loopback", file=sys.stderr)
        return 2
    serve(settings)
    return 0


if __name__ == "__main__":
    sys.exit(main())
