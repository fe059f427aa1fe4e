"""`make bench` reports each cell over alternating rounds: medians, the largest max, and
whether the cell met the targets against the control."""

from __future__ import annotations

from loadtests.bench import CONTROL, GATEWAY, WrkResult, median_of, round_order, verdict


def test_a_cell_is_the_median_of_its_rounds_and_keeps_the_worst_max() -> None:
    runs = [
        WrkResult(rps=300, p50_ms=3.0, p99_ms=9.0, p999_ms=12.0, max_ms=20.0, errors=0, requests=900, cpu_us=2100),
        WrkResult(rps=360, p50_ms=2.6, p99_ms=6.0, p999_ms=9.0, max_ms=55.0, errors=1, requests=1080, cpu_us=1900),
        WrkResult(rps=330, p50_ms=2.8, p99_ms=7.0, p999_ms=30.0, max_ms=31.0, errors=0, requests=990, cpu_us=2000),
    ]
    cell = median_of(runs)
    assert (cell.rps, cell.p50_ms, cell.p99_ms, cell.p999_ms, cell.cpu_us) == (330, 2.8, 7.0, 12.0, 2000)
    assert cell.max_ms == 55.0
    assert (cell.requests, cell.errors) == (2970, 1)


def test_rounds_alternate_who_runs_first() -> None:
    orders = [round_order(n) for n in range(4)]
    assert orders == [(CONTROL, GATEWAY), (GATEWAY, CONTROL)] * 2


def test_each_cell_says_which_target_it_missed() -> None:
    assert verdict(1, 0.92, 1.99) == "met"
    assert verdict(32, 0.90, 1.5) == "met"
    assert verdict(1, 0.895, 1.2) == "missed: throughput 89.5% < 90%"
    assert verdict(32, 0.95, 1.6) == "missed: p99 1.60x > 1.5x"
    assert verdict(1, 0.8, 2.05) == "missed: p99 2.05x > 2x; throughput 80.0% < 90%"
