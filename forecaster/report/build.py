"""Build the report of a backtest run: tables, plots, narrative, then report.md + report.html + PNGs + CSVs."""

from __future__ import annotations

import csv
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from forecaster.report import plots, sections
from forecaster.report.document import (
    Banner,
    Block,
    Details,
    Heading,
    Image,
    Paragraph,
    flatten,
    render_html,
    render_markdown,
)
from forecaster.report.headline import first_screen
from forecaster.report.narrative import build_narrative
from forecaster.report.runfolder import RunData, load_run
from forecaster.report.stats import Estimate
from forecaster.report.tables import DEFAULT_SIGNIFICANCE, Significance, Tables, build_tables, point_errors

ProgressSink = Callable[[str], None]  # where the report's progress lines go


@dataclass(frozen=True)
class ReportPaths:
    """What the report wrote."""

    html: Path
    markdown: Path
    images: list[Path]
    csvs: list[Path]


def _ignore(_line: str) -> None:
    """A progress sink that drops the line."""


def _est_columns(name: str, est: Estimate) -> dict[str, float]:
    return {name: est.value, f"{name}_low": est.low, f"{name}_high": est.high}


def write_csvs(tables: Tables, out: Path) -> list[Path]:
    """metrics.csv and comparisons.csv: every number of the report, machine-readable."""
    metrics_path, comparisons_path = out / "metrics.csv", out / "comparisons.csv"
    metric_rows = []
    for r in tables.rows:
        row: dict[str, object] = {
            "regime": r.regime,
            "model": r.model,
            "variant": r.variant,
            "lead_bucket": r.lead_bucket,
            "n_windows": r.n_windows,
            "n_points": r.n_points,
        }
        for name in ("mae", "rmse", "wql", "coverage80", "skill"):
            row.update(_est_columns(name, getattr(r, name)))
        metric_rows.append(row)
    comparison_rows = []
    for c in tables.comparisons:
        row = {
            "kind": c.kind,
            "regime": c.regime,
            "lead_bucket": c.lead_bucket,
            "metric": c.metric,
            "model_a": c.model_a,
            "variant_a": c.variant_a,
            "model_b": c.model_b,
            "variant_b": c.variant_b,
            "n_windows": c.n_windows,
            "value_a": c.result.value_a,
            "value_b": c.result.value_b,
        }
        row.update(_est_columns("diff", c.result.diff))
        row.update(_est_columns("rel", c.result.rel))
        comparison_rows.append(row)
    for path, rows in ((metrics_path, metric_rows), (comparisons_path, comparison_rows)):
        with path.open("w", newline="", encoding="utf-8") as handle:
            if rows:
                writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
                writer.writeheader()
                writer.writerows(rows)
    return [metrics_path, comparisons_path]


def _figure(plot: plots.Plot | None, heading: str) -> list[Block]:
    if plot is None:
        return []
    return [Heading(3, heading), Image(plot.path, plot.title, plot.caption)]


def make_plots(
    run: RunData, tables: Tables, out: Path, *, seed: int, resamples: int, progress: ProgressSink
) -> list[Block]:
    """All figures as document blocks, in report order."""
    points = point_errors(run)
    progress("plotting error vs lead time")
    lead = plots.error_vs_lead(run, tables, points, out, seed=seed, resamples=resamples)
    progress("plotting representative windows")
    windows = [plots.window_plot(run, tables, regime, out) for regime in ("quiet", "cycling")]
    progress("plotting covariate ablation and data used")
    ablation = plots.covariate_ablation(run, tables, out)
    data = plots.data_used(run, points, out)
    blocks: list[Block] = [Heading(2, "Plots"), *sections.stand_in_banner(run)]
    blocks += _figure(lead, "Error vs lead time")
    for plot, regime in zip(windows, ("quiet", "cycling"), strict=True):
        blocks += _figure(plot, f"Representative {regime} window")
        if plot is None:
            blocks.append(Paragraph(f"No {regime} windows in this run."))
    blocks += _figure(ablation, "Covariate ablation")
    if ablation is None:
        blocks.append(Paragraph("No covariate ablation in this run (fewer than two covariate variants)."))
    blocks += [Heading(2, "Data used"), Image(data.path, data.title, data.caption)]
    return blocks


def build_report(
    run_dir: Path,
    out: Path,
    *,
    seed: int = 0,
    resamples: int = 1000,
    progress: ProgressSink = _ignore,
    significance: Significance = DEFAULT_SIGNIFICANCE,
) -> ReportPaths:
    """Read RUN, compute everything, write report.md, report.html (self-contained), PNGs and CSVs into out."""
    run = load_run(run_dir)
    out.mkdir(parents=True, exist_ok=True)
    windows = run.forecasts["cutoff"].nunique()
    progress(f"computing metrics: {windows} windows, {resamples} bootstrap resamples")
    tables = build_tables(run, seed=seed, resamples=resamples, significance=significance)
    narrative = build_narrative(run, tables)
    progress("plotting the headline figure")
    screen = first_screen(run, tables, out)
    figure_blocks = make_plots(run, tables, out, seed=seed, resamples=resamples, progress=progress)
    data_blocks, plot_blocks = figure_blocks[-2:], figure_blocks[:-2]
    heading, *about = sections.summary(run, tables, resamples, seed)
    banners = [b for b in about if isinstance(b, Banner)]
    blocks: list[Block] = [
        heading,
        *banners,
        *screen,
        Details("About this run", [b for b in about if not isinstance(b, Banner)]),
        Details("Findings, in sentences", sections.findings(narrative, "finetuned" in tables.models)[1:]),
        Details("Metrics at all lead times", sections.headline_table(run, tables)[1:]),
        Details("Paired comparisons", sections.comparison_table(run, tables)[1:]),
        Details("Plots", plot_blocks[1:]),
        Details("Metrics by regime and lead bucket", sections.bucket_tables(run, tables)[1:]),
        Details("Data used", [*data_blocks[1:], sections.data_table(run, tables)]),
        Paragraph("Every number above is also in metrics.csv and comparisons.csv beside this report."),
    ]
    blocks = [b for b in blocks if not (isinstance(b, Details) and not b.blocks)]
    progress("rendering report.md and report.html")
    csvs = write_csvs(tables, out)
    markdown = out / "report.md"
    markdown.write_text(render_markdown(blocks), encoding="utf-8")
    page = out / "report.html"
    title = f"Backtest report {run.manifest.get('run_id', run_dir.name)}"
    page.write_text(render_html(blocks, title), encoding="utf-8")
    images = [b.path for b in flatten(blocks) if isinstance(b, Image)]
    return ReportPaths(html=page, markdown=markdown, images=images, csvs=csvs)
