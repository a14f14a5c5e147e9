"""bench.report: pure figure functions on hand-made tidy tables, the loader, the page and the CLI."""
from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import optuna
import pandas as pd
import plotly.graph_objects as go
import pytest

from bench.errors import DataError
from bench.report import FIGURES, NotApplicable, RunData, build_report, load_run, render_page
from bench.report import __main__ as report_cli
from bench.report.figures import in_order
from bench.report.figures import models as fm
from bench.report.figures import robustness as fr
from bench.report.figures import sweep as fs
from bench.report.summary import findings, model_findings

CLASSES = ["happy", "sad", "disgust"]
MODELS = {"hdf": "hdf", "base": "baseline"}


def DSM_ROWS(epoch: int) -> dict[str, float]:
    return {"ce": 1.9 / epoch, "dsc": 2.5, "ib": 0.3, "lambda_ce": 9.5, "lambda_sc": 0.005 * epoch,
            "g": 20.0 / epoch, "grad_share_ce": 0.99, "grad_share_dsc": 0.01 * epoch,
            "grad_share_ib": 3e-5, "pairs": 1.02}


def _study(directions: list[str]) -> optuna.Study:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(directions=directions, sampler=optuna.samplers.RandomSampler(0))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        study.set_metric_names(["war", "seconds"][: len(directions)])

    def objective(t: optuna.Trial):
        x, y = t.suggest_float("loss.tau", 0.1, 1.0), t.suggest_float("optim.lr", 1e-4, 1e-2,
                                                                        log=True)
        war = 0.7 - (x - 0.3) ** 2 - np.log10(y / 1e-3) ** 2 / 50
        return (war, 10 * x) if len(directions) == 2 else war

    study.optimize(objective, n_trials=8)
    return study


def _trials() -> pd.DataFrame:
    rows = []
    for n, (status, epochs) in enumerate([("completed", 4), ("stopped", 2), ("diverged", 3),
                                          ("completed", 4), ("failed", 1)]):
        for e in range(1, epochs + 1):
            for m, v in (("war", 0.3 + 0.1 * e - 0.01 * n), ("loss", 2.0 / e)):
                rows.append(dict(trial=f"t{n:03d}", number=n, status=status, reason="",
                                 duration_s=10.0 * epochs, epoch=e, metric=m, value=v,
                                 **{"param.loss.tau": 0.1 * (n + 1)}))
    return pd.DataFrame(rows)


def _metrics() -> pd.DataFrame:
    rows = []
    for model, role in MODELS.items():
        good = 0.8 if role == "hdf" else 0.7
        for e in (1, 2):
            rows += [dict(model=model, role=role, fold=1, epoch=e, split="train", metric=m, value=v)
                     for m, v in (("loss", 1.0 / e), ("seconds", 12.0 if role == "hdf" else 8.0))]
            if role == "hdf":  # what DSM did, as bench.train writes it
                rows += [dict(model=model, role=role, fold=1, epoch=e, split="train", metric=m,
                              value=v) for m, v in DSM_ROWS(e).items()]
            test = {"war": good * e / 2, "uar": (good - 0.1) * e / 2, "recall_happy": 0.9,
                    "recall_sad": 0.6, "recall_disgust": 0.1 if role == "baseline" else 0.4}
            rows += [dict(model=model, role=role, fold=1, epoch=e, split="test", metric=m, value=v)
                     for m, v in test.items()]
    return pd.DataFrame(rows)


def _confusion() -> pd.DataFrame:
    counts = {"hdf": [[8, 2, 0], [1, 9, 0], [1, 1, 2]], "base": [[9, 1, 0], [2, 8, 0], [3, 1, 0]]}
    return pd.DataFrame([dict(model=m, true=CLASSES[i], pred=CLASSES[j], count=cm[i][j])
                         for m, cm in counts.items() for i in range(3) for j in range(3)])


def _results() -> pd.DataFrame:
    rows = []
    for model, role in MODELS.items():
        clean = 0.8 if role == "hdf" else 0.7
        for seed in (0, 1):
            rows += [dict(model=model, role=role, shift="clean", severity=0, seed=seed, metric=m,
                          value=clean - (0.1 if m == "uar" else 0)) for m in ("war", "uar")]
            for shift, harm in (("blur", 0.05), ("jpeg", 0.02)):
                rows += [dict(model=model, role=role, shift=shift, severity=s, seed=seed,
                              metric="war", value=clean - harm * s * (0.5 if role == "hdf" else 1))
                         for s in (1, 2, 3)]
    return pd.DataFrame(rows)


def _gain() -> pd.DataFrame:
    return pd.DataFrame([dict(model="hdf", baseline="base", metric="war", condition="clean",
                              estimate=0.09, ci_low=0.02, ci_high=0.16),
                         dict(model="hdf", baseline="base", metric="war", condition="corrupted",
                              estimate=0.12, ci_low=-0.01, ci_high=0.2)])


def _imbalance() -> pd.DataFrame:
    return pd.DataFrame([dict(model=m, role=r, ratio=ratio, group=g, seed=0,
                              value=0.7 - 0.1 * np.log10(ratio) * (2 if r == "baseline" else 1))
                         for m, r in MODELS.items() for ratio in (1, 10, 100)
                         for g in ("all", "many", "few")])


def _sources() -> pd.DataFrame:
    return pd.DataFrame([dict(model=m, role=r, split=s, seed=0, metric="war",
                              value=0.7 - (0.1 if s == "unseen" else 0) * (1 if r == "hdf" else 2))
                         for m, r in MODELS.items() for s in ("seen", "unseen")])


def _effects() -> pd.DataFrame:
    return pd.DataFrame([dict(effect=e, kind="main" if ":" not in e else "interaction",
                              metric=m, estimate=0.02, ci_low=-0.01, ci_high=0.05,
                              training_seeds=3, note="")
                         for e in ("dam", "dsm", "dam:dsm") for m in ("clean_war", "clean_uar")])


def _data(directions: tuple[str, ...] = ("maximize", "minimize")) -> RunData:
    return RunData(root=Path("nowhere"), name="hand", study=_study(list(directions)),
                   effects=_effects(),
                   trials=_trials(), models=pd.DataFrame({"name": list(MODELS),
                                                          "role": list(MODELS.values())}),
                   metrics=_metrics(), confusion=_confusion(), results=_results(), gain=_gain(),
                   imbalance=_imbalance(), sources=_sources(), has_robustness=True)


@pytest.mark.parametrize("name", FIGURES.names())
def test_every_figure_draws_from_hand_made_tables(name):
    fig = FIGURES.get(name)(_data())
    assert isinstance(fig, go.Figure) and len(fig.data) >= 1
    assert fig.layout.title.text  # every figure says what it is
    fig.to_json()  # serialisable: what the page embeds


@pytest.mark.parametrize("name", FIGURES.names())
def test_every_figure_says_why_when_its_table_is_absent(name):
    with pytest.raises(NotApplicable, match="no .* table"):
        FIGURES.get(name)(RunData(root=Path("nowhere"), name="empty"))


def test_registry_sections_and_order():
    assert {s.section for s in in_order()} == {"sweep", "attribution", "models", "robustness"}
    assert [s.name for s in in_order()][:2] == ["sweep.history", "sweep.importance"]
    with pytest.raises(Exception, match="Did you mean 'sweep.curves'"):
        FIGURES.get("sweep.curve")


def test_pareto_only_for_multi_objective_studies():
    with pytest.raises(NotApplicable, match="single-objective"):
        fs.pareto_front(_study(["maximize"]))
    assert fs.objective_names(_study(["maximize", "minimize"])) == ["war", "seconds"]


def test_learning_curves_mark_every_trial_that_did_not_complete():
    fig = fs.learning_curves(_trials(), "war")
    marks = [t for t in fig.data if t.mode == "markers"]
    assert len(marks) == 3  # stopped, diverged, failed
    stopped = [t for t in marks if t.legendgroup == "stopped"][0]
    assert list(stopped.x) == [2]  # where ASHA stopped it
    assert sorted({t.name for t in fig.data if t.mode == "lines"}) == [
        "completed", "diverged", "failed", "stopped"]
    with pytest.raises(NotApplicable, match="'uar'"):
        fs.learning_curves(_trials(), "uar")


def test_leaderboard_and_confusion_are_computed_from_the_tables():
    board = fm.leaderboard(_metrics())
    assert list(board["model"]) == ["hdf", "base"]  # best WAR first
    assert board.loc[0, "WAR"] == pytest.approx(0.8) and board.loc[1, "s/epoch"] == 8.0
    assert list(board.columns[4:7]) == CLASSES  # per-class recall in label order
    fig = fm.confusion_matrices(_confusion(), roles=MODELS)
    z = np.array(fig.data[1].z)  # base: rows normalised, recall on the diagonal
    assert z.sum(axis=1) == pytest.approx([1, 1, 1])
    assert np.diag(z) == pytest.approx([0.9, 0.8, 0.0])
    ints = _confusion().assign(true=lambda d: d.true.map(CLASSES.index),
                               pred=lambda d: d.pred.map(CLASSES.index))
    named = fm.confusion_matrices(ints, class_names=CLASSES)
    assert list(named.data[0].x) == CLASSES


def test_dsm_figure_draws_each_dsm_models_diagnostics():
    from bench.report.figures.dsm import dsm_diagnostics

    metrics = _metrics()
    fig = dsm_diagnostics(metrics, roles=MODELS)
    traces = {t.name: t for t in fig.data}
    assert set(traces) == set(DSM_ROWS(1))  # only the DSM model ("hdf") has rows
    assert list(traces["lambda_sc"].y) == [0.005, 0.01]
    assert list(traces["grad_share_dsc"].x) == [1, 2]
    assert fig.layout.title.text.startswith("What DSM did")
    twice = pd.concat([metrics, metrics.assign(model="hdf2")])
    assert len(dsm_diagnostics(twice, roles=MODELS).data) == 2 * len(DSM_ROWS(1))
    with pytest.raises(NotApplicable, match="no model recorded DSM diagnostics"):
        dsm_diagnostics(metrics[~metrics.metric.isin(["lambda_ce", "lambda_sc"])])


def test_robustness_figures_use_the_numbers():
    heat = fr.shift_heatmaps(_results())
    assert list(heat.data[0].y) == ["blur", "jpeg"] and np.array(heat.data[0].z).shape == (2, 3)
    curves = fr.degradation_curves(_results())
    hdf_blur = [t for t in curves.data if t.name == "hdf"][0]
    assert list(hdf_blur.x) == [0, 1, 2, 3] and hdf_blur.y[0] == pytest.approx(0.8)
    assert [t for t in curves.data if t.name == "base"][0].line.dash == "dash"
    bars = fr.gain_bars(_gain()).data[0]
    assert list(bars.y) == pytest.approx([9, 12])
    assert list(bars.error_y.array) == pytest.approx([7, 8])
    assert list(bars.error_y.arrayminus) == pytest.approx([7, 13])
    imb = fr.imbalance_curves(_imbalance())
    assert [a.text for a in imb.layout.annotations] == ["all classes", "many-shot", "few-shot"]
    src = fr.source_bars(_sources())
    assert [t.name for t in src.data] == ["seen sources", "unseen sources"]


def test_findings_are_computed_not_typed():
    lines = findings(_data(("maximize",)))
    text = "\n".join(lines)
    assert "The sweep ran 5 trials: 2 completed, 1 stopped early by ASHA, 1 diverged, 1 failed." in text
    assert ("hdf reaches WAR 0.800 vs 0.700 for base, the best baseline (+10.0 points; paired gain "
            "+9.0 points, 95% CI [2.0, 16.0], excludes 0).") in text
    assert "corrupted +12.0 points (95% CI [-1.0, 20.0], includes 0)" in text
    assert "Hardest class: disgust" in text
    assert "Unseen vs seen sources (WAR): hdf -10.0 points, base -20.0 points." in text
    assert "Best trial #" in text  # no summary.json: the Optuna study's best
    data = _data(("maximize",))
    data.summary = {"best_trial": "t003", "best_scores": {"val_war": 0.7123},
                    "best_params": {"loss.tau": 0.25}, "pareto_front": ["t003"]}
    assert "Best trial t003: val_war 0.712 (loss.tau=0.25)." in findings(data)
    # Without robustness results, the clean numbers come from the last test epoch.
    data = _data()
    data.results = data.gain = None
    assert model_findings(data)[0].startswith("hdf reaches WAR 0.800 vs 0.700 for base")


def _write_models(root: Path) -> None:
    for model, role in MODELS.items():
        folder = root / "models" / model
        folder.mkdir(parents=True)
        _metrics().query("model == @model").drop(columns=["model", "role"]).to_csv(
            folder / "metrics.csv", index=False)


def test_page_degrades_section_by_section(tmp_path):
    _write_models(tmp_path / "run")
    (tmp_path / "run" / "trials.parquet").write_text("not parquet")
    data = load_run(tmp_path / "run")
    assert data.trials is None and "trials.parquet: unreadable" in data.notes[0]
    page = render_page(data)
    assert "No robustness/ folder" in page.html and "No sweep tables" in page.html
    assert page.drawn == ["models.training", "models.dsm"] and not page.errors
    assert "models.confusion: not shown (no confusion table" in page.html
    assert page.html.count("<script type=\"text/javascript\">") == 1  # plotly.js once
    body = page.html.split("<body>")[1]
    assert "<script src" not in page.html and "https://" not in body  # opens offline


def test_loader_splits_imbalance_and_source_rows(tmp_path):
    root = tmp_path / "run"
    (root / "robustness").mkdir(parents=True)
    res = pd.concat([_results(), pd.DataFrame([
        dict(model="hdf", role="hdf", shift="imbalance", severity=10, seed=0, metric="uar_few",
             value=0.4),
        dict(model="hdf", role="hdf", shift="source_unseen", severity=0, seed=0, metric="war",
             value=0.6)])])
    res.to_parquet(root / "robustness" / "results.parquet", index=False)
    pd.DataFrame({"model": ["hdf"], "oops": [1]}).to_csv(root / "robustness" / "gain.csv")
    data = load_run(root)
    assert set(data.results["shift"]) == {"clean", "blur", "jpeg"}
    assert data.imbalance[["ratio", "group", "value"]].values.tolist() == [[10, "few", 0.4]]
    assert data.sources["split"].tolist() == ["unseen"]
    assert data.gain is None and "gain.csv: missing column(s) baseline" in data.notes[0]
    assert "No models" in build_report(root)


def test_cli_writes_the_report_and_fails_in_one_line(tmp_path, capsys):
    _write_models(tmp_path / "run")
    with pytest.raises(SystemExit) as e:
        report_cli.run_main(report_cli.main, [str(tmp_path / "run"), "--out",
                                              str(tmp_path / "r.html")])
    assert e.value.code == 0 and (tmp_path / "r.html").stat().st_size > 1_000_000
    assert "2 figures" in capsys.readouterr().out  # training curves, what DSM did
    with pytest.raises(SystemExit) as e:
        report_cli.run_main(report_cli.main, [str(tmp_path / "missing")])
    err = capsys.readouterr().err
    assert e.value.code == 2 and err.count("\n") == 1 and "run folder not found" in err
    with pytest.raises(DataError):
        load_run(tmp_path / "missing")


@pytest.mark.parametrize("marker, is_run", [
    ("study.yaml", True), ("models.yaml", True), ("summary.json", True), ("optuna.journal", True),
    ("trials.parquet", True), ("trials.csv", True), ("models/hdf/", True), ("robustness/", True),
    ("config.yaml+metrics.csv", True),      # a bench.train run folder
    ("metrics.csv", False), ("config.yaml", False), ("models/", False), ("notes.txt", False),
    ("", False),
])
def test_a_run_folder_is_what_a_run_writer_leaves(tmp_path, marker, is_run):
    from bench.report.tables import is_run_folder

    for name in filter(None, marker.split("+")):
        target = tmp_path / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.mkdir() if name.endswith("/") else target.write_text("x")
    assert is_run_folder(tmp_path) == is_run
    if not is_run:
        with pytest.raises(DataError, match="is not a run folder"):
            load_run(tmp_path)


def test_a_bench_train_run_folder_reports_its_model(tmp_path):
    run = tmp_path / "x3d_ce-20261205"
    run.mkdir()
    (run / "config.yaml").write_text("method: x3d_ce\nmodel: {name: x3d}\n")
    _metrics().query("model == 'base'").drop(columns=["model", "role"]).to_csv(
        run / "metrics.csv", index=False)
    data = load_run(run)
    assert data.models.to_dict("records") == [{"name": run.name, "role": "baseline", "path": "."}]
    assert set(data.metrics.model) == {run.name}
    assert "models.training" in render_page(data).drawn


def test_a_manifest_path_outside_the_run_is_not_read(tmp_path):
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    _metrics().query("model == 'hdf'").to_csv(outside / "metrics.csv", index=False)
    run = tmp_path / "run"
    run.mkdir()
    (run / "models.yaml").write_text(f"- {{name: hdf, role: hdf, path: {outside}}}\n"
                                     "- {name: up, role: hdf, path: ../elsewhere}\n")
    data = load_run(run)
    assert data.metrics is None
    assert sum("points outside" in n for n in data.notes) == 2


@pytest.mark.parametrize("name, data", [
    ("trials.parquet", b"PAR1 truncated"),
    ("robustness/gain.csv", "model,baseline\ncaf\xe9,x\n".encode("latin-1")),
])
def test_cli_names_an_unreadable_table_on_the_terminal(tmp_path, capsys, name, data):
    _write_models(tmp_path / "run")
    (tmp_path / "run" / name).parent.mkdir(exist_ok=True)
    (tmp_path / "run" / name).write_bytes(data)
    with pytest.raises(SystemExit) as e:
        report_cli.run_main(report_cli.main, [str(tmp_path / "run")])
    captured = capsys.readouterr()
    assert e.value.code == 0  # the rest of the run is readable
    assert captured.err.startswith(f"warning: {name}: unreadable"), captured.err
    assert (tmp_path / "run" / "report.html").is_file()
    assert not list((tmp_path / "run").glob(".*.tmp"))


def test_robustness_suite_tables_load_as_written(tmp_path):
    """gain.csv (estimate, condition) and long-tail rows exactly as `python -m robustness` writes them."""
    import pandas as pd

    from bench.report.tables import load_run

    rob = tmp_path / "run" / "robustness"
    rob.mkdir(parents=True)
    pd.DataFrame([{"model": "hdf-best", "baseline": "x3d_ce", "condition": "clean", "metric": "war",
                   "estimate": 0.05, "ci_low": 0.01, "ci_high": 0.09, "n_boot": 100, "level": 0.95}]
                 ).to_csv(rob / "gain.csv", index=False)
    rows = [{"model": "x3d_ce", "role": "baseline", "shift": s, "severity": v, "seed": 0,
             "metric": m, "value": 0.5}
            for s, v in (("clean", 0), ("longtail_exp", 10), ("longtail_step", 10))
            for m in ("war", "uar", "recall_many", "recall_few")]
    pd.DataFrame(rows).to_parquet(rob / "results.parquet", index=False)
    data = load_run(tmp_path / "run")
    assert data.gain is not None and data.gain.loc[0, "estimate"] == 0.05
    assert data.gain.loc[0, "condition"] == "clean"
    assert set(data.imbalance.group) == {"all", "many", "few"}
    assert set(data.imbalance.ratio) == {10}
    assert set(data.results["shift"]) == {"clean"}
