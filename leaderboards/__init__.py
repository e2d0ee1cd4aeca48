"""Turning runs into comparisons: ranked tables, threshold dimensions (d*90, d*(eps)), plots.

Functions here take plain records (dicts with method, ratio, d, D, seed, status and metrics), so they
work the same on fresh outcomes and on runs read back from MLflow (`leaderboards.source`).
"""
from leaderboards.build import Leaderboard, build, to_csv, to_markdown, to_text
from leaderboards.table import summarize

__all__ = ["Leaderboard", "build", "to_csv", "to_markdown", "to_text", "summarize"]
