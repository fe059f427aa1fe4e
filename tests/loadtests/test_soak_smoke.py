"""The soak harness, briefly: two replicas of two workers each on PostgreSQL and Redis,
a few seconds of the mixed traffic, then the report's invariants. Every wait inside the
harness is bounded (start-up, each request, the drain)."""

from __future__ import annotations

from loadtests.soak import SoakOptions, run_soak
from loadtests.soak_report import render, rss_by_worker


def test_a_short_soak_answers_correctly_and_the_ledger_is_complete() -> None:
    # RSS growth is not judged here: a few seconds are all warm-up. `make soak` judges it.
    opts = SoakOptions(seconds=12, concurrency=4, warmup_s=4, rss_interval_s=2, max_rss_growth_pct=1000, quiet=True)
    report = run_soak(opts)
    text = render(report)

    assert report.results, text
    assert [r for r in report.results if not r.correct] == [], text
    assert report.ledger.expected > 0, text
    assert report.ledger.missing == [], text
    assert report.ledger.duplicated == [], text
    assert report.ledger.found == report.ledger.expected, text
    assert report.drain_status == [0, 0], text
    assert len(rss_by_worker(report)) == 4, text
    assert report.failures == [], text
    assert "verdict: PASS" in text
