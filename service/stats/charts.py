"""The report's charts (PNG, matplotlib headless): identified by region, forms by age band,
and the pathway from identification to a decision. A hidden figure is drawn as no bar and
marked "—", never as a number."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib as mpl

mpl.use("Agg")

import matplotlib.pyplot as plt
from matplotlib.axes import Axes

from service.reference import service as reference_service
from service.stats.report import HIDDEN, Report, Value, funnel
from service.stats.rules import TOTAL

COLOURS = ("#1b6ca8", "#e07a1f", "#6a994e", "#8d6a9f", "#999999")


def _label_hidden(ax: Axes, positions: list[int], values: list[Value]) -> None:
    for position, value in zip(positions, values, strict=True):
        if value is None:
            ax.text(0, position, f" {HIDDEN}", va="center", color="#666")


def _counts_axis(values: Sequence[float | None]) -> tuple[float, float]:
    """A count axis from zero that shows its bars (and stays readable when every figure is
    hidden or zero)."""
    top = max((v for v in values if v is not None), default=0)
    return 0, max(top * 1.12, 1)


def identified_by_region(report: Report, path: Path) -> Path:
    """A horizontal bar per region (and abroad), in the order of the reference data."""
    v = report.views["V4"]
    regions = [r for r in v.rows if r != TOTAL]
    values = [v.values.get((r, TOTAL)) for r in regions]
    fig, ax = plt.subplots(figsize=(7, 7))
    positions = list(range(len(regions)))
    ax.barh(positions, [x or 0 for x in values], color=COLOURS[0])
    ax.set_xlim(*_counts_axis(values))
    _label_hidden(ax, positions, values)
    names = {r["code"]: r["name"] for r in reference_service.regions()}
    ax.set_yticks(positions, [names.get(r, r) for r in regions])
    ax.invert_yaxis()
    ax.set_xlabel("persons identified")
    ax.set_title(f"Victims identified by region of exploitation, {report.year}")
    fig.text(0.01, 0.01, f"{HIDDEN} hidden (disclosure control)", fontsize=8, color="#666")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def forms_by_age_band(report: Report, path: Path) -> Path:
    """Grouped bars: for each age band, the persons by form of exploitation."""
    v = report.views["V10"]
    bands = [b for b in v.rows if b != TOTAL]
    forms = [f for f in v.columns if f != TOTAL]
    fig, ax = plt.subplots(figsize=(8, 4.5))
    width = 0.8 / len(forms)
    for i, form in enumerate(forms):
        positions = [b + i * width for b in range(len(bands))]
        values = [v.values.get((band, form)) for band in bands]
        ax.bar(
            positions, [x or 0 for x in values], width, label=form, color=COLOURS[i % len(COLOURS)]
        )
        for x, value in zip(positions, values, strict=True):
            if value is None:
                ax.text(x, 0, HIDDEN, ha="center", va="bottom", color="#666", fontsize=8)
    ax.set_ylim(*_counts_axis([v.values.get((b, f)) for b in bands for f in forms]))
    ax.set_xticks([b + 0.4 - width / 2 for b in range(len(bands))], bands)
    ax.set_xlabel("age at identification")
    ax.set_ylabel("persons identified")
    ax.set_title(f"Forms of exploitation by age band, {report.year}")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def pathway_funnel(report: Report, path: Path) -> Path:
    """From identified to referred, placed, defended and decided."""
    stages = funnel(report)
    labels = [name for name, _ in stages]
    values = [value for _, value in stages]
    fig, ax = plt.subplots(figsize=(8, 4))
    positions = list(range(len(stages)))
    ax.barh(positions, [x or 0 for x in values], color=COLOURS[0])
    ax.set_xlim(*_counts_axis(values))
    for position, value in zip(positions, values, strict=True):
        text = HIDDEN if value is None else f" {value:,.0f}"
        ax.text(value or 0, position, text, va="center", color="#333" if value else "#666")
    ax.set_yticks(positions, labels)
    ax.invert_yaxis()
    ax.set_title(f"The pathway, {report.year}\n(persons; the last stage counts defendants)")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def draw(report: Report, out: Path) -> list[Path]:
    """Every chart of the report, into `out`."""
    out.mkdir(parents=True, exist_ok=True)
    year = report.year
    return [
        identified_by_region(report, out / f"identified-by-region-{year}.png"),
        forms_by_age_band(report, out / f"forms-by-age-band-{year}.png"),
        pathway_funnel(report, out / f"pathway-{year}.png"),
    ]
