# ruff: noqa: RUF001, RUF002
"""Results: per-round values → median and spread, ratios, goals; the table, JSON and chart."""

from __future__ import annotations

import json
import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

TARGETS = ("pullzone", "nginx", "varnish")


@dataclass
class Row:
    id: str
    title: str
    unit: str
    higher_better: bool
    values: dict[str, list[float]] = field(default_factory=dict)
    notes: dict[str, str] = field(default_factory=dict)  # target → why there is no value
    reference: set[str] = field(default_factory=set)  # targets measured for reference only
    goal: str = ""
    met: bool | None = None
    goal_detail: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def add(self, target: str, value: float | None) -> None:
        if value is not None:
            self.values.setdefault(target, []).append(float(value))

    def median(self, target: str) -> float | None:
        vals = self.values.get(target)
        return statistics.median(vals) if vals else None

    def spread_pct(self, target: str) -> float | None:
        """Half the min–max range, in % of the median (0 with a single round)."""
        vals = self.values.get(target)
        med = self.median(target)
        if not vals or not med:
            return None
        return (max(vals) - min(vals)) / 2 / abs(med) * 100

    def ratio(self, other: str) -> float | None:
        """pullzone / other, of the medians (for times: other / pullzone is not used;
        a ratio > 1 means pullzone measured more, whatever the unit)."""
        a, b = self.median("pullzone"), self.median(other)
        if a is None or b is None or b == 0 or other in self.reference:
            return None
        return a / b

    def summary(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for target in TARGETS:
            vals = self.values.get(target)
            if vals:
                out[target] = {
                    "rounds": [round(v, 4) for v in vals],
                    "median": round(statistics.median(vals), 4),
                    "min": round(min(vals), 4),
                    "max": round(max(vals), 4),
                    "spread_pct": round(self.spread_pct(target) or 0.0, 2),
                    **({"reference_only": True} if target in self.reference else {}),
                }
            elif target in self.notes:
                out[target] = {"n/a": self.notes[target]}
        return out

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "title": self.title,
            "unit": self.unit,
            "higher_is_better": self.higher_better,
            "results": self.summary(),
            "ratios": {
                "pullzone/nginx": _round(self.ratio("nginx")),
                "pullzone/varnish": _round(self.ratio("varnish")),
            },
            "goal": self.goal or None,
            "goal_met": self.met,
            "goal_detail": self.goal_detail or None,
            "extra": self.extra,
        }


def _round(x: float | None) -> float | None:
    return None if x is None else round(x, 3)


def fmt_value(value: float, unit: str) -> str:
    if unit == "req/s":
        return f"{value / 1000:.1f}k" if value >= 1000 else f"{value:.0f}"
    if unit == "GB/s":
        return f"{value:.2f}"
    if unit == "ms":
        return f"{value:.2f}" if value < 10 else f"{value:.0f}" if value >= 100 else f"{value:.1f}"
    if unit == "MB":
        return f"{value:.0f}"
    if unit == "requests":
        return f"{value:.0f}"
    if unit == "%":
        return f"{value:.1f}"
    return f"{value:.3g}"


def cell(row: Row, target: str) -> str:
    med = row.median(target)
    if med is None:
        return row.notes.get(target, "—")
    text = fmt_value(med, row.unit)
    spread = row.spread_pct(target)
    if spread is not None and len(row.values[target]) > 1 and row.unit != "requests":
        text += f" ±{spread:.0f}%"
    elif row.unit == "requests" and len(row.values[target]) > 1:
        lo, hi = min(row.values[target]), max(row.values[target])
        if lo != hi:
            text += f" [{lo:.0f}–{hi:.0f}]"
    if target in row.reference:
        text += " (ref)"
    return text


def ratio_cell(row: Row, other: str) -> str:
    r = row.ratio(other)
    return "—" if r is None else f"{r:.2f}×"


def met_cell(row: Row) -> str:
    if not row.goal:
        return ""
    return {True: "✓", False: "✗", None: "n/a"}[row.met]


def table(rows: list[Row]) -> str:
    header = [
        "id",
        "scenario",
        "unit",
        "pullzone",
        "nginx",
        "varnish",
        "pz/nginx",
        "pz/varnish",
        "goal",
        "met",
    ]
    lines = [header]
    for row in rows:
        goal = row.goal + (f" ({row.goal_detail})" if row.goal_detail else "")
        lines.append(
            [
                row.id,
                row.title,
                row.unit,
                cell(row, "pullzone"),
                cell(row, "nginx"),
                cell(row, "varnish"),
                ratio_cell(row, "nginx"),
                ratio_cell(row, "varnish"),
                goal,
                met_cell(row),
            ]
        )
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    out = []
    for n, line in enumerate(lines):
        out.append("| " + " | ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)) + " |")
        if n == 0:
            out.append("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(out)


def write_json(path: Path, meta: dict[str, Any], rows: list[Row]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    data = {"meta": meta, "scenarios": [row.as_dict() for row in rows]}
    path.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n")


COLORS = {"pullzone": "#2b7bb9", "nginx": "#3a9a3a", "varnish": "#c0504d"}


def chart(path: Path, rows: list[Row], title: str) -> bool:
    """One small bar chart per row (median, min–max whiskers); False without matplotlib."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    shown = [r for r in rows if r.values]
    if not shown:
        return False
    cols = 3
    nrows = (len(shown) + cols - 1) // cols
    fig, axes = plt.subplots(nrows, cols, figsize=(cols * 4.2, nrows * 3.2), squeeze=False)
    for ax, row in zip(axes.flat, shown, strict=False):
        names, meds, lo, hi, colors = [], [], [], [], []
        for target in TARGETS:
            vals = row.values.get(target)
            if not vals:
                continue
            med = statistics.median(vals)
            names.append(target + (" (ref)" if target in row.reference else ""))
            meds.append(med)
            lo.append(med - min(vals))
            hi.append(max(vals) - med)
            colors.append(COLORS[target])
        ax.bar(names, meds, yerr=[lo, hi], color=colors, capsize=4)
        for i, med in enumerate(meds):
            ax.annotate(
                fmt_value(med, row.unit),
                (i, med),
                ha="center",
                va="bottom",
                fontsize=8,
                xytext=(0, 2),
                textcoords="offset points",
            )
        mark = {True: " ✓", False: " ✗", None: ""}[row.met] if row.goal else ""
        ax.set_title(f"{row.id}: {row.title}{mark}", fontsize=9)
        ax.set_ylabel(row.unit, fontsize=8)
        ax.margins(y=0.15)
        ax.tick_params(labelsize=8)
        if row.goal:
            ax.set_xlabel("goal: " + row.goal, fontsize=7)
    for ax in list(axes.flat)[len(shown) :]:
        ax.axis("off")
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True
