"""Turning runs into comparisons: tables of accuracy per (method, ratio), threshold dimensions, plots.

Functions here take plain records (dicts with method, ratio, d, seed, status and metrics), so they
work the same on fresh outcomes and on runs read back from MLflow.
"""
from leaderboards.table import accuracy_table, summarize

__all__ = ["accuracy_table", "summarize"]
