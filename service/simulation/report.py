"""What `ruta simulate` prints: estimates with their intervals, the analytic answer beside
the simulated one where there is one, and two scenarios side by side."""

from __future__ import annotations

import math

from service.simulation import stats
from service.simulation.runner import BedsSearch, Summary


def _pct(e: stats.Estimate) -> str:
    if math.isnan(e.value):
        return "-"
    return f"{100 * e.value:6.2f}% [{100 * e.low:6.2f}, {100 * e.high:6.2f}]"


def _days(e: stats.Estimate) -> str:
    if math.isnan(e.value):
        return "-"
    return f"{e.value:7.1f} [{e.low:7.1f}, {e.high:7.1f}]"


def _exact(summary: Summary, key: str, percent: bool = True) -> str:
    value = summary.analytic.get(key)
    if value is None:
        return ""
    return f"   exact {100 * value:6.2f}%" if percent else f"   exact {value:7.1f}"


def _lines(summary: Summary) -> list[tuple[str, str]]:
    """(label, text) rows of one scenario."""
    rows = [
        ("replications", f"{summary.replications}"),
        ("arrivals a year (mean)", f"{summary.arrivals_per_year:,.0f}"),
        ("placement rate", _pct(summary.placement_rate) + _exact(summary, "placement_rate")),
        ("  among those a facility can take", _pct(summary.placement_rate_eligible)),
        ("probability of finding no bed", _pct(summary.no_bed) + _exact(summary, "no_bed")),
        (
            "  eligible, every eligible bed full",
            _pct(summary.all_full) + _exact(summary, "all_full"),
        ),
        ("gave up waiting (lost)", _pct(summary.lost)),
    ]
    rows += [(f"unmet need: {reason}", _pct(e)) for reason, e in summary.unmet.items()]
    for name, w in summary.waits.items():
        label = f"{'minors' if name == 'minor' else 'adults'} waiting, held in {w.held_in}"
        rows.append((label, f"{w.waited:,} waits ended"))
        rows.append(("  mean days [95% CI]", _days(w.mean)))
        rows.append(("  p90 / max days", f"{w.p90:7.1f} / {w.max:7.1f}"))
    if "mean_wait_all_arrivals" in summary.analytic:
        rows.append(
            ("exact mean wait, every arrival", f"{summary.analytic['mean_wait_all_arrivals']:7.2f}")
        )
    rows += [(f"occupancy {code}", _pct(e)) for code, e in summary.occupancy.items()]
    rows += [
        ("still waiting at the end", f"{summary.still_waiting:,}"),
        ("transfers", f"{summary.transfers:,}"),
        ("P(a year has >10% without a bed)", _pct(summary.years_over_10pct)),
    ]
    if summary.analytic:
        rows.append(("offered load (erlangs)", f"{summary.analytic['offered_load_erlangs']:.2f}"))
    else:
        rows.append(("exact answer", "none for this scenario (overflow, raids, or limited waits)"))
    return rows


def render(summary: Summary) -> str:
    """One scenario, one row per figure: estimate [95% confidence interval]."""
    rows = _lines(summary)
    width = max(len(label) for label, _ in rows)
    out = [f"scenario {summary.scenario}: ratios of totals over replications, 95% CI"]
    out += [f"  {label:<{width}}  {text}" for label, text in rows]
    return "\n".join(out)


def render_comparison(first: Summary, second: Summary) -> str:
    """Two scenarios side by side (common random numbers), with paired differences."""
    left, right = dict(_lines(first)), dict(_lines(second))
    labels = list(left) + [label for label in right if label not in left]
    width = max(len(label) for label in labels)
    column = max(len(text) for text in [*left.values(), first.scenario]) + 2
    out = [f"  {'':<{width}}  {first.scenario:<{column}}{second.scenario}"]
    out += [
        f"  {label:<{width}}  {left.get(label, '-'):<{column}}{right.get(label, '-')}"
        for label in labels
    ]
    a, b = first.runs, second.runs
    placed = stats.ratio_difference(
        [r.placed.sum() for r in b],
        [r.arrivals.sum() for r in b],
        [r.placed.sum() for r in a],
        [r.arrivals.sum() for r in a],
    )
    no_bed = stats.ratio_difference(
        [r.no_bed.sum() for r in b],
        [r.arrivals.sum() for r in b],
        [r.no_bed.sum() for r in a],
        [r.arrivals.sum() for r in a],
    )
    out.append(f"  {'difference in placement rate':<{width}}  {_signed(placed)}")
    out.append(f"  {'difference in P(no bed)':<{width}}  {_signed(no_bed)}")
    return "\n".join(out)


def _signed(e: stats.Estimate) -> str:
    return f"{100 * e.value:+6.2f} points [{100 * e.low:+6.2f}, {100 * e.high:+6.2f}] (paired)"


def render_search(search: BedsSearch) -> str:
    """The bed search's answer and the points it tried."""
    out = [f"beds at {search.facility} for a placement rate of {100 * search.target:.0f}%"]
    out.append("  (among the people some facility can take):")
    for beds, summary in sorted(search.tried.items()):
        out.append(
            f"  {beds:5d} beds: placement {_pct(summary.placement_rate_eligible)}"
            f"  P(no bed) {_pct(summary.no_bed)}"
        )
    out.append(
        f"  answer: {search.beds} beds"
        if search.beds is not None
        else "  answer: not reached within the search's cap"
    )
    return "\n".join(out)
