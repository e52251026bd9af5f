"""The service: HTTP API and report pages, schedules, the queue worker, restart safety.

``observatory serve`` composes it (see ``runtime.Service``); docs/api.md and
docs/operations.md describe it from the outside.
"""
