"""The import summary: counts by reason, first locations, complete vs incomplete."""

from __future__ import annotations

import pytest

from collector.importers.duplicates import Duplicates
from collector.importers.records import BadRow, Skipped, bad
from collector.importers.report import ImportReport, verdict


def test_when_problems_are_noted_then_summary_counts_them_with_first_five_locations() -> None:
    report = ImportReport(files=1, rows_read=100, complete=True)
    for line_no in range(2, 16):
        report.note(BadRow(line_no, "bad timestamp", f"raw {line_no}"), "a.csv")
    report.note(BadRow(40, "NUL bytes in line", "x", file="var/2021-06-11.csv"), "all.tar.gz")
    report.note(Skipped(7, "state unavailable (missing)"), "a.csv")
    lines = report.summary_lines()
    assert lines[0].startswith("import complete: 1 file(s), 100 rows read")
    assert "15 bad rows" in lines[0] and "1 skipped" in lines[0]
    assert "  bad: bad timestamp: 14 (first at a.csv:2, a.csv:3, a.csv:4, a.csv:5, a.csv:6; e.g. 'raw 2')" in lines
    assert "  bad: NUL bytes in line: 1 (first at var/2021-06-11.csv:40; e.g. 'x')" in lines
    assert "  skipped: state unavailable (missing): 1 (first at a.csv:7)" in lines


def test_when_import_did_not_finish_then_summary_says_how_to_finish() -> None:
    assert "INCOMPLETE" in ImportReport().summary_lines()[0]
    assert "rerun" in ImportReport().summary_lines()[0]


def test_when_raw_text_has_nul_runs_or_is_long_then_it_is_shortened_for_the_report() -> None:
    row = bad(3, "NUL bytes in line", "\x00" * 500 + "10:3,36.0\n")
    assert row.raw == "<500 NUL>10:3,36.0"
    assert len(bad(1, "x", "y" * 1000).raw) == 163


def test_when_progress_is_shown_then_rate_and_percent_are_included() -> None:
    report = ImportReport(rows_read=1000, elapsed_s=2.0, lines_written=700)
    assert report.progress_fields(0.5) == {
        "rows": 1000,
        "rows_per_s": 500,
        "written": 700,
        "bad_rows": 0,
        "files": 0,
        "pct": 50.0,
    }
    assert report.progress_line(None).startswith("rows 1,000 (500/s)")


def test_when_one_line_has_the_same_problem_twice_then_its_location_is_listed_once() -> None:
    report = ImportReport()
    for item in (Skipped(95, "direction unknown"), Skipped(95, "direction unknown"), Skipped(96, "direction unknown")):
        report.note(item, "f.csv")
    assert "  skipped: direction unknown: 3 (first at f.csv:95, f.csv:96)" in report.summary_lines()


# (samples per file, non-empty lines per file, lines rejected, stalled) -> (exit code, texts in the errors)
VERDICTS = [
    ({"a.csv": 10}, {"a.csv": 11}, 0, False, 0, []),
    ({"a.csv": 10}, {"a.csv": 11}, 0, True, 1, []),
    ({"a.csv": 0}, {"a.csv": 0}, 0, False, 2, ["nothing could be imported"]),
    ({"a.csv": 0}, {"a.csv": 5}, 0, False, 2, ["nothing could be imported"]),
    ({"a.csv": 10}, {"a.csv": 11}, 3, False, 3, ["rejected 3 lines; they are set aside as dead letters: HINT"]),
    ({"a.csv": 10, "b.csv": 0}, {"a.csv": 11, "b.csv": 0}, 0, False, 3, ["b.csv contributed nothing (the file is"]),
    ({"a.csv": 10, "b.csv": 0}, {"a.csv": 11, "b.csv": 7}, 0, False, 3, ["b.csv contributed nothing (7 lines, not"]),
    ({"a.csv": 9, "b.csv": 0}, {"a.csv": 9, "b.csv": 1}, 2, False, 3, ["b.csv contributed nothing", "rejected 2"]),
]  # fmt: skip


@pytest.mark.parametrize("case", VERDICTS)
def test_when_an_import_ends_then_its_exit_code_and_errors_say_what_was_lost(case: tuple) -> None:
    file_samples, file_rows, rejected, stalled, code, texts = case
    report = ImportReport(
        samples=sum(file_samples.values()), lines_rejected=rejected, file_samples=file_samples, file_rows=file_rows
    )
    got_code, errors = verdict(report, stalled, "HINT")
    assert got_code == code
    assert len(errors) == len(texts)
    for text in texts:
        assert any(text in line for line in errors), (text, errors)


def test_when_samples_repeat_or_a_run_resumed_then_the_summary_counts_each_point_once() -> None:
    report = ImportReport(files=1, samples=10, lines_written=10, lines_resumed=7, complete=True)
    report.duplicates = Duplicates(2, 1, ["system[site=a] pv_w at 2024-01-01T00:00:00Z in a.csv"])
    lines = report.summary_lines()
    assert "10 samples (8 distinct), 10 points written" in lines[0]
    assert lines[1].startswith("  resumed: 7 points left in the buffer by an interrupted run were written first")
    assert lines[2].startswith("  duplicate: 2 samples repeat the series and time of an earlier one, 1 with a")
    report.file_samples, report.file_rows = {"a.csv": 10}, {"a.csv": 10}
    code, errors = verdict(report, stalled=False)
    assert code == 0  # reported, not a failure: nothing was lost that the user does not know about
    assert errors[0].startswith("warning: 2 samples repeat")
