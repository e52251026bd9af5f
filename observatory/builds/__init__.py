"""Candidate gateways: pip venvs, commands and URLs; supervision and sampling."""
