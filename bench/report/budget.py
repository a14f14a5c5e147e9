"""`python -m bench.report.budget RUN [RUN ...]`: the verdict's gain against training budget.

    python -m bench.report.budget runs/compare-8ep runs/compare-16ep runs/compare-32ep \
        --out gain-vs-epochs.html --screenshot gain-vs-epochs.png

    each run folder's summary.json (epochs) + robustness/verdict.json (gain, interval)
        -> table: epochs, candidate, baseline, metric, estimate, ci_low, ci_high, seeds
        -> one figure: gain in points vs epochs, with the intervals over seeds x clips

Answers whether a candidate's deficit shrinks, holds or turns into a gain with
longer training, from comparison runs that differ only in `train.epochs`.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import pandas as pd
import plotly.graph_objects as go
import plotly.io as pio

from bench.cli import run_main
from bench.errors import DataError
from bench.report.figures._common import model_colors, style
from bench.runfolder import ROBUSTNESS, read_summary
from robustness.runs import VERDICT_FILE

__all__ = ["budget_table", "budget_figure", "main"]

COLUMNS = ["epochs", "candidate", "baseline", "metric", "estimate", "ci_low", "ci_high",
           "training_seeds", "run"]


def budget_table(runs: list[tuple[str, int, list[dict]]]) -> pd.DataFrame:
    """(run name, epochs, verdict rows) per run -> one tidy row per run, pair and metric."""
    rows = []
    for name, epochs, verdicts in runs:
        for v in verdicts:
            for m in ("war", "uar"):
                rows.append({"epochs": int(epochs), "candidate": v["candidate"],
                             "baseline": v["baseline"], "metric": m, "estimate": v[m],
                             "ci_low": v[f"{m}_low"], "ci_high": v[f"{m}_high"],
                             "training_seeds": v["training_seeds"], "run": name})
    return pd.DataFrame(rows, columns=COLUMNS).sort_values(["candidate", "baseline", "metric",
                                                            "epochs"], ignore_index=True)


def budget_figure(table: pd.DataFrame, scale: float = 100.0) -> go.Figure:
    """Gain (points) vs epochs per pair and metric, error bars = the verdict's intervals."""
    keys = list(dict.fromkeys(zip(table.candidate, table.baseline, table.metric)))
    colors = model_colors([f"{a} vs {b} ({m.upper()})" for a, b, m in keys])
    fig = go.Figure()
    for a, b, m in keys:
        r = table[(table.candidate == a) & (table.baseline == b) & (table.metric == m)]
        name = f"{a} vs {b} ({m.upper()})"
        y = r.estimate * scale
        fig.add_trace(go.Scatter(
            x=r.epochs, y=y, mode="lines+markers", name=name, line={"color": colors[name]},
            error_y={"type": "data", "symmetric": False, "array": r.ci_high * scale - y,
                     "arrayminus": y - r.ci_low * scale},
            hovertemplate=f"{name}<br>%{{x}} epochs: %{{y:+.1f}} points<extra></extra>"))
    fig.add_hline(y=0, line={"color": "black", "width": 1})
    fig.update_xaxes(title_text="training epochs", type="log", tickvals=sorted(set(table.epochs)))
    fig.update_yaxes(title_text="gain (points; 95 % interval over seeds x clips)")
    seeds = int(table.training_seeds.min()) if len(table) else 0
    return style(fig, f"Gain against training budget ({seeds} training seeds per point)",
                 height=420)


def _read(run: Path) -> tuple[str, int, list[dict]]:
    summary = read_summary(run)
    path = run / ROBUSTNESS / VERDICT_FILE
    if not summary.get("epochs") or not path.is_file():
        raise DataError(f"{run}: needs a comparison run folder with summary.json and "
                        f"{ROBUSTNESS}/{VERDICT_FILE} (python -m bench.compare)")
    try:
        verdicts = json.loads(path.read_text())
    except ValueError as e:
        raise DataError(f"{path}: unreadable ({e})") from None
    return run.name, int(summary["epochs"]), verdicts


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.report.budget",
                                 description=__doc__.split("\n")[0])
    ap.add_argument("runs", nargs="+", metavar="RUN", help="comparison run folders")
    ap.add_argument("--out", required=True, help="HTML file for the figure")
    ap.add_argument("--screenshot", metavar="PNG", help="also a PNG of it (headless Chromium)")
    args = ap.parse_args(argv)
    table = budget_table([_read(Path(r)) for r in args.runs])
    out = Path(args.out)
    if not out.parent.is_dir():
        raise DataError(f"--out {out}: folder {out.parent} does not exist")
    pio.write_html(budget_figure(table), str(out), include_plotlyjs=True, full_html=True)
    print(table.assign(**{c: table[c] * 100 for c in ("estimate", "ci_low", "ci_high")})
          .to_string(index=False, float_format=lambda v: f"{v:+.1f}"))
    print(f"wrote {out}")
    if args.screenshot:
        from bench.report.browser import check_page

        seen = check_page(out)
        Path(args.screenshot).write_bytes(seen.png or b"")
        print(f"wrote {args.screenshot}")
    return 0


if __name__ == "__main__":
    run_main(main)
