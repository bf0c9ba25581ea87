"""`monitor.html`: one self-contained page of a monitored batch for a retention manager: the
verdict first, then performance estimated against the test set, the drift of the scores, each
column then versus now (worst first) and the trend over the history. Charts are inline SVG and
styles inline: no network, no other file, and no plotting library (the page of a million rows
is drawn in milliseconds)."""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from churn.store.files import write_text_atomic

COLOURS = {"stable": "#1b7f3b", "warning": "#b26a00", "alarm": "#b00020"}
THEN, NOW = "#7f8c99", "#d2691e"
PALETTE = ("#1f77b4", "#d2691e", "#2ca02c", "#9467bd")
TREND_COLUMNS = 3  # the columns whose PSI the trend plot follows: the worst of the latest batch
CANNOT_SEE = (
    "The estimates assume the run's probabilities are still calibrated: each customer churns with "
    "the probability the model gives. They see a changed customer mix; they cannot see a changed "
    "relation between the features and churn (concept drift: a competitor's offer, a new price), "
    "which only labels reveal. Compare with realised figures when the churn labels arrive."
)


def write_page(path: Path, figures: Mapping[str, Any], history: Sequence[Mapping[str, Any]]) -> None:
    write_text_atomic(path, page(figures, history))


def page(figures: Mapping[str, Any], history: Sequence[Mapping[str, Any]]) -> str:
    parts = [
        _verdict(figures),
        _performance(figures),
        _prediction(figures),
        _columns(figures),
        _trend(history),
        f"<h2>What an estimate cannot see</h2><p>{html.escape(CANNOT_SEE)}</p>",
    ]
    title = f"churn monitoring: {html.escape(str(figures['input']))}"
    return (
        f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{title}</title>'
        f"<style>{STYLE}</style></head><body><h1>{title}</h1>"
        f'<p class="meta">run {html.escape(figures["run_id"])} · {figures["rows"]:,} rows · '
        f"{html.escape(figures['created'])}</p>{''.join(parts)}</body></html>\n"
    )


STYLE = (
    "body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}"
    "table{border-collapse:collapse;margin:1em 0}td,th{border-bottom:1px solid #ddd;padding:4px 10px;"
    "text-align:right;vertical-align:middle}th:first-child,td:first-child{text-align:left}"
    ".verdict{color:#fff;padding:0.8em 1em;border-radius:6px;font-size:1.2em}.meta{color:#666}"
    ".band-stable{color:#1b7f3b}.band-moderate{color:#b26a00}.band-major{color:#b00020;font-weight:bold}"
)


def _verdict(figures: Mapping[str, Any]) -> str:
    verdict = figures["verdict"]
    reasons = (
        "".join(f"<li>{html.escape(line)}</li>" for line in figures["reasons"])
        or "<li>no column, nor the scores, shifted beyond monitor.psi_warn, and the estimated ROC AUC holds</li>"
    )
    return f'<div class="verdict" style="background:{COLOURS[verdict]}">{verdict.upper()}</div><ul>{reasons}</ul>'


def _performance(figures: Mapping[str, Any]) -> str:
    estimated, test, realised = figures["estimated"], figures["test"], figures.get("realised", {})
    rows = [
        ("ROC AUC", "roc_auc", 3),
        ("precision at the threshold", "precision", 3),
        ("recall at the threshold", "recall", 3),
        ("expected cost per customer", "expected_cost_per_customer", 2),
    ]
    head = "<tr><th>metric</th><th>estimated (no labels)</th><th>test rows of the run</th>"
    head += "<th>realised (labels in the file)</th></tr>" if realised else "</tr>"
    body = ""
    for label, key, digits in rows:
        if key not in estimated and key not in test:
            continue
        cells = [_number(estimated.get(key), digits), _number(test.get(key), digits)]
        cells += [_number(realised.get(key), digits)] if realised else []
        body += f"<tr><td>{label}</td>{''.join(f'<td>{c}</td>' for c in cells)}</tr>"
    calibration = figures["calibration"]
    note = (
        f"<p>The run's expected calibration error on its test rows is "
        f"{calibration['expected_calibration_error']:.3f}"
        + (
            "."
            if calibration["estimate_trusted"]
            else f", over monitor.max_calibration_error ({calibration['max_calibration_error']}): the estimates "
            "mean little for this run."
        )
        + "</p>"
    )
    return f"<h2>Performance, estimated without labels (CBPE)</h2><table>{head}{body}</table>{note}"


def _prediction(figures: Mapping[str, Any]) -> str:
    prediction = figures["prediction"]
    edges = [0.0, *prediction["edges"], 1.0]
    labels = [f"{low:.2f}–{high:.2f}" for low, high in zip(edges, edges[1:], strict=False)]
    then, now = prediction["shares_then"], prediction["shares_now"]
    plot = _bars(labels, then, now, (640, 220), "churn probability (bins: deciles of the test rows)")
    text = (
        f"PSI {prediction['psi']:.3f} ({prediction['band']}); mean churn probability "
        f"{_number(prediction['mean_then'], 3)} then, {_number(prediction['mean_now'], 3)} now; share the "
        f"threshold would contact {_percent(prediction['contacted_share_then'])} then, "
        f"{_percent(prediction['contacted_share_now'])} now"
    )
    return f"<h2>Prediction drift</h2><p>{text}</p>{plot}"


def _columns(figures: Mapping[str, Any]) -> str:
    rows = ""
    for column in figures["columns"]:
        band = column["band"].split()[0]
        unseen = _percent(column["unseen_share_now"]) if "unseen_share_now" in column else ""
        keep = [i for i, label in enumerate(column["bins"]) if column["shares_then"][i] or column["shares_now"][i]]
        plot = _bars(
            [column["bins"][i] for i in keep],
            [column["shares_then"][i] for i in keep],
            [column["shares_now"][i] for i in keep],
            (380, 150),
            None,
        )
        rows += (
            f"<tr><td>{html.escape(column['column'])}</td><td>{column['kind']}</td>"
            f'<td>{column["psi"]:.3f}</td><td class="band-{band}">{column["band"]}</td>'
            f"<td>{_percent(column['missing_share_then'])} → {_percent(column['missing_share_now'])}</td>"
            f"<td>{unseen}</td><td>{plot}</td></tr>"
        )
    head = (
        "<tr><th>column</th><th>kind</th><th>PSI</th><th>band</th><th>missing then → now</th>"
        '<th>unseen now</th><th>shares: <span style="color:#7f8c99">then</span> / '
        '<span style="color:#d2691e">now</span></th></tr>'
    )
    settings = figures["settings"]
    bands = (
        f"PSI below {settings['psi_warn']} is stable, below {settings['psi_alarm']} a moderate shift, "
        "above it a major shift."
    )
    return f"<h2>Input columns, largest shift first</h2><p>{bands}</p><table>{head}{rows}</table>"


def _trend(history: Sequence[Mapping[str, Any]]) -> str:
    if len(history) < 2:
        return "<h2>Trend</h2><p>The history holds one batch; the trend appears from the second.</p>"
    columns = list(history[-1]["top_psi"])[:TREND_COLUMNS]
    psi = {c: [line["top_psi"].get(c) for line in history] for c in columns}
    auc = {
        "estimated": [line["estimated_roc_auc"] for line in history],
        "realised": [line.get("realised_roc_auc") for line in history],
    }
    contacted = {"contacted": [line["contacted_share"] for line in history]}
    size = (330, 150)
    charts = (
        _lines(psi, size, "PSI of the latest batch's top columns")
        + _lines(auc, size, "ROC AUC")
        + _lines(contacted, size, "share contacted")
    )
    batches = range(1, len(history) + 1)
    listed = "".join(
        f"<tr><td>{i}</td><td>{html.escape(str(line['input']))}</td><td>{line['verdict']}</td>"
        f"<td>{html.escape(line['created'])}</td></tr>"
        for i, line in zip(batches, history, strict=True)
    )
    return (
        f"<h2>Trend over {len(history)} batches</h2><div>{charts}</div>"
        f"<table><tr><th>batch</th><th>input</th><th>verdict</th><th>monitored</th></tr>{listed}</table>"
    )


def _bars(
    labels: Sequence[str], then: Sequence[float], now: Sequence[float], size: tuple[int, int], title: str | None
) -> str:
    """A grouped bar chart of shares then (grey) and now (orange) per bin, as inline SVG."""
    width, height = size
    left, bottom, top = 34, 58, 16 if title else 6
    plot_w, plot_h = width - left - 6, height - bottom - top
    peak = max([*then, *now, 1e-9])
    step = plot_w / max(len(labels), 1)
    parts = [
        f'<line x1="{left}" y1="{top + plot_h}" x2="{width - 6}" y2="{top + plot_h}" stroke="#999"/>',
        f'<text x="{left - 4}" y="{top + 8}" text-anchor="end" font-size="9">{peak:.0%}</text>',
        f'<text x="{left - 4}" y="{top + plot_h}" text-anchor="end" font-size="9">0</text>',
    ]
    for i, label in enumerate(labels):
        x = left + i * step
        for offset, share, colour in ((0.1, then[i], THEN), (0.5, now[i], NOW)):
            bar = plot_h * share / peak
            tip = f"<title>{html.escape(label)}: {share:.1%}</title>"
            parts.append(
                f'<rect x="{x + step * offset:.1f}" y="{top + plot_h - bar:.1f}" width="{step * 0.4:.1f}" '
                f'height="{bar:.1f}" fill="{colour}">{tip}</rect>'
            )
        centre = x + step / 2
        parts.append(
            f'<text transform="translate({centre:.1f},{top + plot_h + 8}) rotate(40)" font-size="8">'
            f"{html.escape(label[:18])}</text>"
        )
    if title:
        parts.append(f'<text x="{left}" y="11" font-size="10">{html.escape(title)}</text>')
    return _svg(width, height, parts)


def _lines(series: Mapping[str, Sequence[float | None]], size: tuple[int, int], title: str) -> str:
    """A line chart of one value per batch for each series, as inline SVG."""
    width, height = size
    left, bottom, top = 40, 20, 18
    plot_w, plot_h = width - left - 90, height - bottom - top
    values = [v for points in series.values() for v in points if v is not None]
    low, high = (min(values), max(values)) if values else (0.0, 1.0)
    high = high if high > low else low + 1e-9
    count = max(len(points) for points in series.values())
    parts = [
        f'<text x="{left}" y="12" font-size="10">{html.escape(title)}</text>',
        f'<text x="{left - 4}" y="{top + 8}" text-anchor="end" font-size="9">{high:.3g}</text>',
        f'<text x="{left - 4}" y="{top + plot_h}" text-anchor="end" font-size="9">{low:.3g}</text>',
        f'<line x1="{left}" y1="{top + plot_h}" x2="{left + plot_w}" y2="{top + plot_h}" stroke="#999"/>',
    ]
    for n, (name, points) in enumerate(series.items()):
        colour = PALETTE[n % len(PALETTE)]
        xy = [
            (left + plot_w * i / max(count - 1, 1), top + plot_h * (1 - (v - low) / (high - low)))
            for i, v in enumerate(points)
            if v is not None
        ]
        path = " ".join(f"{x:.1f},{y:.1f}" for x, y in xy)
        parts.append(f'<polyline points="{path}" fill="none" stroke="{colour}" stroke-width="2"/>')
        parts += [f'<circle cx="{x:.1f}" cy="{y:.1f}" r="2.5" fill="{colour}"/>' for x, y in xy]
        parts.append(
            f'<text x="{left + plot_w + 6}" y="{top + 10 + 12 * n}" font-size="9" fill="{colour}">'
            f"{html.escape(name[:16])}</text>"
        )
    return _svg(width, height, parts)


def _svg(width: int, height: int, parts: Sequence[str]) -> str:
    return f'<svg role="img" width="{width}" height="{height}" font-family="sans-serif">{"".join(parts)}</svg>'


def _number(value: float | None, digits: int) -> str:
    return "–" if value is None else f"{value:,.{digits}f}"


def _percent(value: float | None) -> str:
    return "–" if value is None else f"{value:.1%}"
