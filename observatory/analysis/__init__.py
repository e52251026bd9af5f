"""Regression analysis as pure functions over pandas/numpy (no database, no network).

Entry point: ``analyse(candidate, baseline, thresholds, overrides)``; inputs are
``RunData``; methods and defaults are described in docs/statistics.md.
"""

from observatory.analysis.changepoint import ChangePoint
from observatory.analysis.rundata import RunData
from observatory.analysis.verdict import Analysis, analyse

__all__ = ["Analysis", "ChangePoint", "RunData", "analyse"]
