"""Plotting a sweep's summary: tradeoff.png, the rate–distortion plane and, against the swept key, a panel per
registry family that has one and that the sweep measured."""

from __future__ import annotations

from typing import Any

import numpy as np
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from betavae.base.plotting import new_figure, render
from betavae.metrics import registry
from betavae.runs.layout import Status
from betavae.runs.sweep import OWN_WEIGHT
from betavae.summary.groups import Row, key_label

COLORS = ("C0", "C1", "C2", "C3", "C4", "C5", "C6")
STYLES = ("-", "--", ":", "-.")


def iso_elbo_lines(ax: Any, levels: list[float]) -> None:
    """Dashed lines recon + KL = const (iso-ELBO) across the plot; the darker one passes through the best
    (lowest) −ELBO, and lines below it would be better bounds."""
    if not levels:
        return
    ax.autoscale_view()  # the limits the points need, fixed before the lines are drawn across them
    (x0, x1), (y0, y1), best = ax.get_xlim(), ax.get_ylim(), min(levels)
    step = float(np.ceil((max(levels) - best) / 4)) if max(levels) - best > 4 else 2.0
    for level in best + step * np.arange(-2, 8):
        ax.plot([x0, x1], [level - x0, level - x1], ls="--", lw=0.8, color="0.8", zorder=0)
    ax.plot([x0, x1], [best - x0, best - x1], ls="--", lw=1, color="0.3", zorder=0,
            label=f"recon + KL = {best:.1f} (best −ELBO); grey: every {step:g} nats")  # fmt: skip
    ax.set_xlim(x0, x1)
    ax.set_ylim(y0, y1)
    ax.legend(loc="upper right", fontsize=8)


def series(row: Row, along: str) -> str:
    """The line a group is drawn on: its label without the swept key ("objective=tcvae"; "" when only it varies);
    along each objective's own weight, the objective it trains."""
    if along == OWN_WEIGHT:
        return row["series"]
    return ",".join(part for part in row["group"].split(",") if part.split("=", 1)[0].lstrip("+") != along)


def error_bar(row: Row, key: str) -> float:
    """A metric's error bar: its sd over the group's seeds, else, with one seed, its sd within the run where the
    registry names one (FID over sample draws), else none."""
    spread = registry.metric(key).spread
    return row.get(f"{key} std") or (row.get(spread) if spread else None) or 0.0


def against(ax: Any, done: list[Row], keys: dict[str, str], along: str) -> bool:
    """Each metric in ``keys`` (key: legend label) against the swept key, mean ± sd over seeds, one line per
    series (the other swept keys: solid, dashed, ...); a log axis for a wide positive range. Whether anything
    was drawn."""
    rows = sorted((r for r in done if r.get(along) is not None), key=lambda r: r[along])
    lines = sorted({series(r, along) for r in rows})
    by_objective = along == OWN_WEIGHT  # a colour per objective, a line style per metric
    drawn = False
    for k, (key, label) in enumerate(keys.items()):
        for i, line in enumerate(lines):
            have = [r for r in rows if key in r and series(r, along) == line]
            if have and (by_objective or (k < len(COLORS) and i < len(STYLES))):
                x, y, errors = ([r[along] for r in have], [r[key] for r in have], [error_bar(r, key) for r in have])
                legend = "_nolegend_" if by_objective else f"{label} · {line}" if line else label
                color, style = (
                    (COLORS[i % len(COLORS)], STYLES[k % len(STYLES)]) if by_objective else (COLORS[k], STYLES[i])
                )
                ax.errorbar(x, y, yerr=errors, fmt="o", ls=style, color=color, capsize=3, label=legend)
                drawn = True
    if by_objective and drawn:  # one entry per objective (colour) and per metric (style), not per line
        handles = [Line2D([], [], color=COLORS[i % len(COLORS)], marker="o", label=line)
                   for i, line in enumerate(lines)]  # fmt: skip
        handles += [Line2D([], [], color="0.3", ls=STYLES[k % len(STYLES)], label=label)
                    for k, label in enumerate(keys.values())]  # fmt: skip
        ax.legend(handles=handles, fontsize=7)
    values = [r[along] for r in rows]
    if values and min(values) > 0 and max(values) / min(values) > 5:
        ax.set_xscale("log")
    ax.set_xlabel(key_label(along))
    return drawn


def tradeoff_figure(rows: list[Row], along: str) -> Figure:
    """The rate–distortion plane (KL, recon) with one labelled point per group; then, against the swept key, each
    registry panel whose first metric some group has (FID, the KL's parts, disentanglement, ...)."""
    rate, distortion = registry.RATE, registry.DISTORTION
    done = [r for r in rows if r["status"] is Status.OK and rate in r and distortion in r]
    panels = [(panel, keys) for panel, keys in registry.panels() if keys and any(next(iter(keys)) in r for r in done)]
    fig = new_figure(16 * (1 + len(panels)) / 3, 4.2)  # 16 inches for three panels
    left, *axes = fig.subplots(1, 1 + len(panels), squeeze=False)[0]
    values = {r.get(along) for r in done}
    by_value = along != OWN_WEIGHT and len(values) == len(done) and None not in values
    for r in done:
        label = f"{key_label(along)} = {r[along]:g}" if by_value else r["group"]
        left.errorbar(r[rate], r[distortion], xerr=r.get(f"{rate} std"), yerr=r.get(f"{distortion} std"), fmt="o",
                      capsize=3)  # fmt: skip
        left.annotate(label, (r[rate], r[distortion]), textcoords="offset points", xytext=(6, 6))
    left.margins(0.15)  # room for the labels
    iso_elbo_lines(left, [r[rate] + r[distortion] for r in done])
    left.set_xlabel("rate: test KL (nats / image)")
    left.set_ylabel("distortion: test recon (nats / image)")
    left.set_title("rate–distortion")
    for ax, (panel, keys) in zip(axes, panels, strict=True):
        if against(ax, done, keys, along) and len(ax.get_legend_handles_labels()[1]) > 1:
            ax.legend(fontsize=7)
        ax.set_ylabel(panel.ylabel)
        ax.set_title(panel.title)
    seeds = max((r["n"] for r in done), default=1)
    fig.suptitle(f"sweep along {key_label(along)}" + (f" · mean ± std over {seeds} seeds" if seeds > 1 else ""))
    return fig


def tradeoff_plot(rows: list[Row], along: str) -> np.ndarray:
    """tradeoff.png's pixels."""
    return render(tradeoff_figure(rows, along))
