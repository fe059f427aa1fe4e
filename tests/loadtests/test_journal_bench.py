"""The journal benchmark, briefly: each durability setting is measured in its own journal,
and group commit makes far fewer fsyncs than appends (the figures are `make bench`'s)."""

from __future__ import annotations

from pathlib import Path

from loadtests.journal_bench import bench_summary, measure


def test_each_setting_is_measured_and_group_commit_batches_fsyncs(tmp_path: Path) -> None:
    process, grouped, each = measure(tmp_path, events=2_000, fsync_ms=10)
    assert process.appends == grouped.appends == 2_000 and each.appends == 40
    assert process.fsyncs == 0
    assert 1 <= grouped.fsyncs < grouped.appends // 10
    assert each.fsyncs == each.appends
    assert all(len(row.latencies_us) == row.appends for row in (process, grouped, each))


def test_the_summary_is_a_table_with_the_three_rows(tmp_path: Path) -> None:
    text = bench_summary(tmp_path)
    assert "process (default)" in text and "group commit" in text and "every append" in text
    assert list(tmp_path.iterdir()) == []  # the throwaway journals are gone
