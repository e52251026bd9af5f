"""Locust integration: runner (subprocess), plugin (HDR windows, streaming timings,
open-model pacing), spool and live status.

The package modules other than ``plugin`` and ``helpers`` import no Locust or gevent, so
the service process can start runs and read spools without entering gevent.
"""
