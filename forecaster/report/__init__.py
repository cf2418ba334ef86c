"""The backtest report: `build_report(run_dir, out)` writes report.html (self-contained), report.md, PNGs, CSVs."""

from forecaster.report.build import ReportPaths, build_report
from forecaster.report.runfolder import RunFolderError, load_run

__all__ = ["ReportPaths", "RunFolderError", "build_report", "load_run"]
