"""Fault points of a run: a private Redis, a TCP fault proxy, the control-plane switch.

The orchestrator (``observatory.phases``) applies and removes the faults; nothing here
ever touches a Redis, a gateway or a provider it did not start for the run.
"""
