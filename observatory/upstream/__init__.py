"""Mock LLM upstream: an OpenAI- and Anthropic-compatible provider for loopback.

A gateway under test forwards to this server, so the gateway's own behaviour is
measured without provider cost or noise. ``app.create_app`` builds the ASGI app,
``server.UpstreamServer`` runs it in a subprocess (its CPU is measurable per
process) and ``admin`` changes its fault knobs at run time.
"""
