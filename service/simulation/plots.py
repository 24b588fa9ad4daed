"""PNG charts: an occupancy fan chart per facility, and beds against the probability of
finding no bed."""

from __future__ import annotations

from pathlib import Path

import matplotlib as mpl

mpl.use("Agg")

import matplotlib.pyplot as plt
import numpy as np

from service.simulation.runner import Summary

FAN = ((0.05, 0.95), (0.25, 0.75))
OCCUPANCY_EVERY = 7.0  # days between samples of beds in use


def occupancy_fan(
    summary: Summary, beds: tuple[int, ...], codes: tuple[str, ...], path: Path
) -> None:
    """Beds in use over the measured window: median and 50%/90% bands across replications."""
    samples = np.stack([r.occupancy for r in summary.runs if r.occupancy is not None])
    columns = min(3, len(codes))
    rows = -(-len(codes) // columns)
    figure, axes = plt.subplots(rows, columns, figsize=(4 * columns, 2.6 * rows), squeeze=False)
    days = np.arange(samples.shape[2]) * OCCUPANCY_EVERY
    for f, (code, capacity) in enumerate(zip(codes, beds, strict=True)):
        ax = axes[f // columns][f % columns]
        series = samples[:, f, :]
        for low, high in FAN:
            ax.fill_between(
                days,
                np.quantile(series, low, axis=0),
                np.quantile(series, high, axis=0),
                color="tab:blue",
                alpha=0.2,
                linewidth=0,
            )
        ax.plot(days, np.median(series, axis=0), color="tab:blue")
        ax.axhline(capacity, color="black", linestyle="--", linewidth=0.8)
        ax.set_ylim(0, max(capacity, 1) * 1.15)
        ax.set_title(code, fontsize=9)
        ax.set_xlabel("day", fontsize=8)
        ax.set_ylabel("beds in use", fontsize=8)
    for extra in range(len(codes), rows * columns):
        axes[extra // columns][extra % columns].axis("off")
    figure.suptitle(f"{summary.scenario}: occupancy (median, 50% and 90% bands)")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def beds_curve(points: dict[int, Summary], facility: str, path: Path) -> None:
    """The probability of finding no bed, and of finding every eligible bed full, as beds
    are added at one facility (the first includes needs no facility can meet)."""
    beds = sorted(points)
    figure, ax = plt.subplots(figsize=(6, 4))
    for name, colour, label in (
        ("no_bed", "tab:red", "no bed on arrival"),
        ("all_full", "tab:orange", "eligible, every eligible bed full"),
    ):
        estimates = [getattr(points[b], name) for b in beds]
        ax.fill_between(
            beds,
            [e.low for e in estimates],
            [e.high for e in estimates],
            alpha=0.25,
            color=colour,
            linewidth=0,
        )
        ax.plot(beds, [e.value for e in estimates], marker="o", color=colour, label=label)
    ax.set_xlabel(f"beds at {facility}")
    ax.set_ylabel("probability")
    ax.set_ylim(0, 1)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
