"""Write a leaderboard's files: tables (md, csv, html) and plots."""
from __future__ import annotations

from pathlib import Path

from leaderboards.bits import to_csv as bits_csv
from leaderboards.build import Leaderboard, paired_csv, success_csv, to_csv, to_html, to_markdown
from leaderboards.plots import write_plots

FORMATS = ("md", "csv", "html")


def write(lb: Leaderboard, out: Path, formats=FORMATS, plots: bool = True) -> list[Path]:
    """Files under out/: leaderboard.{md,csv,html}, success_probability.csv, paired.csv (method vs next
    in the ranking, seed by seed), PNG plots."""
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    writers = {"md": ("leaderboard.md", lambda: f"# {lb.dataset} / {lb.model} (D = {lb.D:,})\n\n{to_markdown(lb)}\n"),
               "csv": ("leaderboard.csv", lambda: to_csv(lb)),
               "html": ("leaderboard.html", lambda: to_html(lb))}
    for f in formats:
        name, text = writers[f]
        (out / name).write_text(text())
        paths.append(out / name)
    if "csv" in formats:
        if lb.bits:
            (out / "description_length.csv").write_text(bits_csv(lb.bits))
            paths.append(out / "description_length.csv")
        (out / "success_probability.csv").write_text(success_csv(lb))
        paths.append(out / "success_probability.csv")
        (out / "paired.csv").write_text(paired_csv(lb))
        paths.append(out / "paired.csv")
    if plots:
        paths += write_plots(lb, out)
    return paths
