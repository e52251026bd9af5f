"""Locust integration: runner (subprocess), plugin (HDR windows, streaming timings,
open-model pacing), spool and live status.

Only ``plugin``, ``process``, ``master`` and ``helpers`` import Locust or gevent; they run
inside the Locust processes. The service process uses ``runner``, ``spool``, ``status``
and ``histogram`` and never enters gevent.
"""
