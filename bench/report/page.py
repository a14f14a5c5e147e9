"""Assemble the report page: RunData in, one self-contained HTML string out (no I/O).

plotly.js is embedded once in <head>; each figure is a <div class="figure"
data-figure="NAME"> holding its plot, or one line saying why it is not shown.
"""
from __future__ import annotations

import html
import json
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
import plotly.io as pio
import yaml
from plotly.offline import get_plotlyjs

from bench.report.figures import SECTIONS, NotApplicable, in_order
from bench.report.figures.models import leaderboard
from bench.report.summary import findings
from bench.report.tables import RunData

__all__ = ["Page", "render_page", "html_table"]

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0 auto;max-width:1280px;
 padding:16px 24px;color:#222}
h1{font-size:1.6em;margin-bottom:4px} h2{border-bottom:2px solid #ddd;padding-bottom:4px;margin-top:32px}
table.t{border-collapse:collapse;font-size:13px;margin:8px 0}
table.t th,table.t td{border:1px solid #ddd;padding:3px 8px;text-align:right}
table.t th{background:#f4f4f4} table.t td:first-child,table.t th:first-child{text-align:left}
.muted{color:#777;font-size:13px;margin:4px 0} .findings li{margin:3px 0}
.figure{margin:12px 0;min-height:40px} .kv td{text-align:left!important}
details pre{background:#f8f8f8;padding:8px;font-size:12px;overflow:auto}
.note{color:#a33;font-size:13px}
.verdict{font-size:15px;margin:8px 0 16px;padding:0 0 0 20px}
.verdict li{margin:6px 0} .verdict b.better{color:#1a7f37} .verdict b.worse{color:#b42318}
.verdict b.inconclusive{color:#6e5a00}
"""
_ABSENT = {
    "sweep": "No sweep tables (optuna.journal, trials.parquet) in this run folder.",
    "models": "No models (models.yaml or models/<name>/) in this run folder.",
    "robustness": "No robustness/ folder: run `python -m robustness --run RUN_DIR` to add it.",
    "attribution": "No ablation in this run folder (python -m bench.ablate makes one).",
}
_TITLES = {"sweep": "Sweep", "attribution": "Attribution", "models": "Models",
           "robustness": "Robustness"}


@dataclass
class Page:
    """The HTML and what went into it, so callers and tests can check the figure list."""

    html: str
    drawn: list[str] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)  # name -> reason (table absent...)
    errors: dict[str, str] = field(default_factory=dict)  # name -> unexpected error


def _e(x: Any) -> str:
    return html.escape(str(x))


def _cell(v: Any) -> str:
    if isinstance(v, float):
        return "" if pd.isna(v) else (f"{v:.3f}" if abs(v) < 10 else f"{v:.1f}")
    return _e(v)


def html_table(df: pd.DataFrame, bold_max: tuple[str, ...] = ()) -> str:
    """A plain HTML table; the maximum of each `bold_max` column in bold."""
    best = {c: df[c].max() for c in bold_max if c in df.columns}
    head = "".join(f"<th>{_e(c)}</th>" for c in df.columns)
    body = []
    for _, row in df.iterrows():
        tds = []
        for c in df.columns:
            text = _cell(row[c])
            tds.append(f"<td><b>{text}</b></td>" if c in best and row[c] == best[c] else
                       f"<td>{text}</td>")
        body.append(f"<tr>{''.join(tds)}</tr>")
    return f'<table class="t"><tr>{head}</tr>{"".join(body)}</table>'


def _kv(pairs: list[tuple[str, Any]]) -> str:
    rows = "".join(f"<tr><th>{_e(k)}</th><td>{_e(v)}</td></tr>" for k, v in pairs if v not in
                   (None, "", [], {}))
    return f'<table class="t kv">{rows}</table>' if rows else ""


def _duration(seconds: float) -> str:
    s = int(round(seconds))
    return f"{s // 3600}h {s % 3600 // 60:02d}m {s % 60:02d}s" if s >= 3600 else \
        f"{s // 60}m {s % 60:02d}s"


def _flat(d: dict[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    out = []
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out += _flat(v, key + ".")
        elif not isinstance(v, list):
            timed = any(w in k.lower() for w in ("seconds", "duration")) or k.endswith("_s")
            out.append((key, _duration(v) if timed and isinstance(v, (int, float)) else v))
    return out


def _seeds(data: RunData) -> str:
    seeds: set[Any] = set()
    for df in (data.models, data.results):
        if df is not None and "seed" in df.columns:
            seeds |= set(df["seed"].dropna().tolist())
    return ", ".join(str(s) for s in sorted(seeds, key=str))


_WORD_CLASS = {"HDF better": "better", "baseline better": "worse", "inconclusive": "inconclusive"}


def verdict_html(data: RunData) -> str:
    """The verdict sentences (robustness/verdict.json), or one line saying why there are none."""
    if data.verdicts:
        items = []
        for v in data.verdicts:
            word, sentence = str(v.get("word", "")), str(v.get("sentence", ""))
            head, _, rest = sentence.partition(f": {word}.")
            items.append(f'<li data-word="{_e(word)}">{_e(head)}: <b class="'
                         f'{_WORD_CLASS.get(word, "")}">{_e(word)}</b>.{_e(rest)}</li>'
                         if rest or sentence.endswith(f": {word}.") else f"<li>{_e(sentence)}</li>")
        body = f'<ul class="verdict" id="verdict">{"".join(items)}</ul>'
    elif data.has_robustness:
        body = ('<p class="muted verdict" id="verdict">No verdict: the robustness suite found no '
                'candidate and baseline trained with the same seed.</p>')
    else:
        body = ('<p class="muted verdict" id="verdict">No verdict yet: the verdict comes from the '
                'robustness suite (<code>python -m robustness --run RUN_DIR</code>).</p>')
    return "<h2>Verdict</h2>" + body


def _header(data: RunData) -> str:
    parts = [f"<h1>hdf-bench report: {_e(data.name)}</h1>",
             f'<p class="muted">Run folder {_e(data.root)}</p>', verdict_html(data)]
    env = data.env or {}
    pk = env.get("packages") or {}
    run = [("study", data.study.study_name if data.study is not None else None),
           ("seeds", _seeds(data)),
           ("models", ", ".join(data.models["name"]) if data.models is not None else None)]
    hw = [("python", env.get("python")), ("platform", env.get("platform")),
          ("CPUs", env.get("cpus")), ("GPU", env.get("gpu") or ("none" if env else None)),
          ("git commit", env.get("git_commit")),
          ("packages", ", ".join(f"{k} {v}" for k, v in pk.items() if v))]
    parts.append("<h2>What was run</h2>" + _kv(run + hw))
    if data.summary:
        parts.append("<h3>Summary</h3>" + _kv(_flat(data.summary)))
    if data.study_spec is not None:
        spec = yaml.safe_dump(data.study_spec, sort_keys=False)
        parts.append(f"<details><summary>study.yaml</summary><pre>{_e(spec)}</pre></details>")
    for note in data.notes:
        parts.append(f'<p class="note">{_e(note)}</p>')
    found = findings(data)
    if found:
        items = "".join(f"<li>{_e(f)}</li>" for f in found)
        parts.append(f'<h2>Findings</h2><ul class="findings">{items}</ul>')
    return "\n".join(parts)


def _section_present(data: RunData, section: str) -> bool:
    return {"sweep": data.study is not None or data.trials is not None,
            "attribution": data.effects is not None,
            "models": data.models is not None,
            "robustness": data.has_robustness}[section]


def _confirm_table(data: RunData) -> str:
    """The confirming runs: one row per configuration, its value per fresh seed, mean and std."""
    from bench.report.figures import objective_metrics

    c = data.confirm
    metric = (objective_metrics(data) or ["val_war"])[0]
    rows = c[c["metric"] == metric]
    if rows.empty:
        return ""
    wide = rows.pivot_table(index="trial", columns="seed", values="value", aggfunc="mean")
    wide.columns = [f"seed {s}" for s in wide.columns]
    wide["mean"] = wide.mean(axis=1)
    wide["std"] = rows.groupby("trial")["value"].std()
    wide = wide.sort_values("mean", ascending=False).reset_index()
    return (f"<h3>Confirmed at fresh seeds ({_e(metric)}; the best mean is crowned)</h3>"
            + html_table(wide, ("mean",)))


def _effects_table(data: RunData) -> str:
    e = data.effects.copy()
    for c in ("estimate", "ci_low", "ci_high"):
        e[c] = e[c] * 100
    cols = [c for c in ("metric", "effect", "kind", "estimate", "ci_low", "ci_high",
                        "training_seeds", "note") if c in e.columns]
    return ("<h3>Effects (points; 95 % interval over training seeds x test clips)</h3>"
            + html_table(e[cols]))


def _tables(data: RunData, section: str) -> str:
    if section == "sweep" and data.confirm is not None:
        return _confirm_table(data)
    if section == "attribution" and data.effects is not None:
        return _effects_table(data)
    if section == "models" and data.metrics is not None:
        try:
            board = leaderboard(data.metrics)
        except NotApplicable as e:
            return f'<p class="muted">leaderboard: not shown ({_e(e)})</p>'
        best = tuple(c for c in board.columns if c not in ("model", "role", "epochs", "s/epoch",
                                                           "clips/s"))
        return "<h3>Leaderboard (last epoch, test split)</h3>" + html_table(board, best)
    if section == "robustness" and data.scores is not None:
        scores = data.scores
        if {"metric", "value"} <= set(scores.columns):
            scores = scores.pivot_table(index="model", columns="metric", values="value").reset_index()
        return "<h3>Corruption scores</h3>" + html_table(scores)
    return ""


def _figure_html(name: str, fig: Any) -> str:
    div = pio.to_html(fig, full_html=False, include_plotlyjs=False, div_id=f"fig-{name}",
                      config={"displaylogo": False, "responsive": True})
    return f'<div class="figure" data-figure="{_e(name)}">{div}</div>'


def render_page(data: RunData) -> Page:
    page = Page(html="")
    body = [_header(data)]
    for section in SECTIONS:
        body.append(f'<h2 id="{section}">{_TITLES[section]}</h2>')
        if not _section_present(data, section):
            body.append(f'<p class="muted">{_e(_ABSENT[section])}</p>')
            continue
        body.append(_tables(data, section))
        for spec in in_order(section):
            try:
                body.append(_figure_html(spec.name, spec(data)))
                page.drawn.append(spec.name)
            except NotApplicable as e:
                page.skipped[spec.name] = str(e)
                body.append(f'<p class="muted">{_e(spec.name)}: not shown ({_e(e)})</p>')
            except Exception as e:  # a table with unexpected content must not sink the page
                page.errors[spec.name] = f"{type(e).__name__}: {e}"
                body.append(f'<p class="note">{_e(spec.name)}: could not be drawn '
                            f'({_e(type(e).__name__)}: {_e(e)})</p>')
    meta = json.dumps({"figures": page.drawn})
    page.html = (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        f"<title>hdf-bench report: {_e(data.name)}</title><style>{_CSS}</style>"
        f'<script type="text/javascript">{get_plotlyjs()}</script>'
        f'<script type="application/json" id="report-meta">{meta}</script></head>'
        f"<body>\n{chr(10).join(body)}\n</body></html>\n")
    return page
