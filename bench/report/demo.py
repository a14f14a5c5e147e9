"""A small but complete run folder, written to the sweep/robustness contract, for tests and perf.

Nothing is trained: a real Optuna study (journal storage, successive-halving
pruner = ASHA's rule) runs on a made-up objective, and each model's
predictions are drawn clip by clip from a per-class accuracy; every metric is
then computed from those predictions with bench.metrics, so the tables agree
with each other the way a real run's do.
"""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from bench.data.labels import EMOTIONS
from bench.metrics import score
from bench.runs import write_table

__all__ = ["make_demo_run", "DEMO_MODELS", "DEMO_SHIFTS"]

PRIOR = np.array([0.25, 0.18, 0.23, 0.17, 0.10, 0.02, 0.05])  # DFEW-like, rare disgust
# name -> (role, method, seed, clean accuracy of a frequent class, rare-class factor, robustness)
DEMO_MODELS: dict[str, tuple[str, str, int, float, float, float]] = {
    "hdf-best": ("hdf", "hdf", 0, 0.76, 0.70, 0.75),
    "x3d_ce": ("baseline", "x3d_ce", 0, 0.70, 0.30, 1.0),
    "x3d_ce-s1": ("baseline", "x3d_ce", 1, 0.69, 0.32, 1.0),
    "focal": ("baseline", "focal", 0, 0.67, 0.55, 0.95),
}
DEMO_SHIFTS = ("blur", "jpeg", "frame_drop", "color_shift")
_SHIFT_HARM = {"blur": 0.05, "jpeg": 0.03, "frame_drop": 0.06, "color_shift": 0.08}
_PARAMS = ("loss.tau", "optim.lr", "optim.rho", "model.dropout", "loss.dsc_variant")


def _predict(rng: np.random.Generator, y: np.ndarray, acc: np.ndarray) -> np.ndarray:
    """Correct with the class's accuracy, else a wrong class drawn from the prior."""
    k = len(PRIOR)
    right = rng.random(len(y)) < acc[y]
    wrong = (y + 1 + rng.choice(k - 1, size=len(y))) % k
    return np.where(right, y, wrong)


def _class_acc(top: float, rare: float, harm: float = 0.0) -> np.ndarray:
    few = PRIOR < 0.06
    acc = np.where(few, top * rare, top) - harm
    return np.clip(acc, 0.02, 0.98)


def _write_models(root: Path, rng: np.random.Generator, epochs: int, n_test: int) -> None:
    manifest = []
    for name, (role, method, seed, top, rare, _) in DEMO_MODELS.items():
        rows, conf = [], []
        y = rng.choice(len(PRIOR), size=n_test, p=PRIOR)
        for epoch in range(1, epochs + 1):
            ramp = 1 - 0.5 * math.exp(-epoch / 2)
            rows += [dict(fold=1, epoch=epoch, split="train", metric=m, value=v) for m, v in
                     {"loss": 1.9 * math.exp(-epoch / 3) + 0.4 + rng.normal(0, 0.02),
                      "seconds": 14.0 + (6 if role == "hdf" else 0) + rng.normal(0, 0.5),
                      "clips_per_s": 40.0 - (10 if role == "hdf" else 0)}.items()]
            if method == "hdf":  # what DSM did (fixed numbers: the rng stream stays as it was)
                rows += [dict(fold=1, epoch=epoch, split="train", metric=m, value=v) for m, v in
                         {"ce": 1.9 * math.exp(-epoch / 3) + 0.2, "dsc": 2.6, "ib": 0.35,
                          "lambda_ce": 9.5, "lambda_sc": 0.004 + 0.001 * epoch,
                          "g": 20.0 / epoch, "grad_share_ce": 0.99,
                          "grad_share_dsc": 0.01 * epoch, "grad_share_ib": 3e-5,
                          "pairs": 1.03}.items()]
            for split in ("val", "test"):
                pred = _predict(rng, y, _class_acc(top * ramp, rare))
                rows += [dict(fold=1, epoch=epoch, split=split, metric=m, value=v)
                         for m, v in score(y, pred, EMOTIONS).items()]
        cm = pd.crosstab(pd.Categorical(y, categories=range(7)),
                         pd.Categorical(pred, categories=range(7)), dropna=False)
        for which in ("best", "last"):
            conf += [dict(fold=1, checkpoint=which, true=EMOTIONS[i], pred=EMOTIONS[j],
                          count=int(cm.iat[i, j])) for i in range(7) for j in range(7)]
        folder = root / "models" / name
        folder.mkdir(parents=True, exist_ok=True)
        write_table(folder / "metrics.csv", pd.DataFrame(rows))
        write_table(folder / "confusion.csv", pd.DataFrame(conf))
        (folder / "config.yaml").write_text(yaml.safe_dump({"method": method, "train": {
            "seed": seed, "epochs": epochs}}))
        manifest.append(dict(name=name, role=role, method=method, seed=seed, path=f"models/{name}"))
    (root / "models.yaml").write_text(yaml.safe_dump(manifest, sort_keys=False))


def _bootstrap(a: np.ndarray, b: np.ndarray, rng: np.random.Generator, n: int = 500):
    """Paired bootstrap of mean(a) - mean(b) over clips: (gain, 2.5%, 97.5%)."""
    idx = rng.integers(0, len(a), size=(n, len(a)))
    diffs = a[idx].mean(axis=1) - b[idx].mean(axis=1)
    return float(a.mean() - b.mean()), *np.percentile(diffs, [2.5, 97.5]).tolist()


def _write_robustness(root: Path, rng: np.random.Generator, n_clips: int, seeds: int) -> None:
    preds, results = [], []
    y = rng.choice(len(PRIOR), size=n_clips, p=PRIOR)
    conditions = [("clean", 0)] + [(s, k) for s in DEMO_SHIFTS for k in range(1, 6)]
    for name, (role, _, _, top, rare, rob) in DEMO_MODELS.items():
        for seed in range(seeds):
            for shift, sev in conditions:
                harm = _SHIFT_HARM.get(shift, 0.0) * sev * rob
                pred = _predict(rng, y, _class_acc(top, rare, harm))
                preds.append(pd.DataFrame(dict(model=name, shift=shift, severity=sev, seed=seed,
                                               clip=np.arange(n_clips), y_true=y, y_pred=pred)))
                s = score(y, pred, EMOTIONS)
                results += [dict(model=name, role=role, shift=shift, severity=sev, seed=seed,
                                 metric=m, value=s[m]) for m in ("war", "uar")]
            for ratio in (1, 10, 50, 100):
                drop = math.log10(ratio) * (0.04 if role == "hdf" else 0.08)
                for group, base in (("", 0.62), ("_many", 0.72), ("_medium", 0.6), ("_few", 0.45)):
                    v = base * top / 0.7 - drop * (2.0 if group == "_few" else 1.0)
                    results.append(dict(model=name, role=role, shift="imbalance", severity=ratio,
                                        seed=seed, metric=f"uar{group}", value=v + rng.normal(0, .01)))
            for split, loss in (("seen", 0.0), ("unseen", 0.1 * rob)):
                for m in ("war", "uar"):
                    results.append(dict(model=name, role=role, shift=f"source_{split}", severity=0,
                                        seed=seed, metric=m, value=top - loss + rng.normal(0, .01)))
    rob = root / "robustness"
    rob.mkdir(exist_ok=True)
    pred_df = pd.concat(preds, ignore_index=True)
    res_df = pd.DataFrame(results)
    write_table(rob / "predictions.parquet", pred_df)
    write_table(rob / "results.parquet", res_df)
    write_table(rob / "results.csv", res_df)
    # Gain of the HDF model over each baseline, seed 0, paired over clips.
    p0 = pred_df[pred_df["seed"] == 0].assign(ok=lambda d: (d.y_true == d.y_pred).astype(float))
    gains = []
    for base in [m for m, v in DEMO_MODELS.items() if v[0] == "baseline"]:
        for scope, mask in (("clean", p0["shift"] == "clean"), ("corrupted", p0["shift"] != "clean")):
            a = p0[mask & (p0.model == "hdf-best")].ok.to_numpy()
            b = p0[mask & (p0.model == base)].ok.to_numpy()
            g, lo, hi = _bootstrap(a, b, rng)
            gains.append(dict(model="hdf-best", baseline=base, metric="war", condition=scope,
                              estimate=g, ci_low=lo, ci_high=hi))
    write_table(rob / "gain.csv", pd.DataFrame(gains))
    war = res_df[res_df.metric == "war"]
    clean = war[war["shift"] == "clean"].groupby("model").value.mean()
    shifted = war[war["shift"].isin(DEMO_SHIFTS)].groupby("model").value.mean()
    err = 1 - shifted
    scores = [dict(model=m, metric=k, value=v) for m in clean.index for k, v in
              {"mPC": shifted[m], "rPC": shifted[m] / clean[m], "mCE": err[m] / err["x3d_ce"],
               "relative_mCE": (err[m] - (1 - clean[m])) / (err["x3d_ce"] - (1 - clean["x3d_ce"]))
               }.items()]
    write_table(rob / "scores.csv", pd.DataFrame(scores))


def _objective_war(p: dict[str, Any], epoch: int) -> float:
    """A made-up response surface: best near tau 0.2, lr 1e-3, rho 0.05."""
    fit = (0.72 - 0.05 * math.log10(p["loss.tau"] / 0.2) ** 2
           - 0.06 * math.log10(p["optim.lr"] / 1e-3) ** 2 - 0.4 * (p["optim.rho"] - 0.05) ** 2
           - 0.1 * (p["model.dropout"] - 0.2) ** 2 + (0.01 if p["loss.dsc_variant"] == "code" else 0))
    return fit * (1 - 0.6 * math.exp(-epoch / 2.5))


def _run_study(root: Path, name: str, n_trials: int, epochs: int, multi_objective: bool) -> None:
    import optuna
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    storage = JournalStorage(JournalFileBackend(str(root / "optuna.journal")))
    directions = ["maximize", "minimize"] if multi_objective else ["maximize"]
    study = optuna.create_study(study_name=name, storage=storage, directions=directions,
                                sampler=optuna.samplers.TPESampler(seed=0, n_startup_trials=8),
                                pruner=optuna.pruners.SuccessiveHalvingPruner(min_resource=2, reduction_factor=2))
    rows = []
    for _ in range(n_trials):
        t = study.ask()
        p = {"loss.tau": t.suggest_float("loss.tau", 0.02, 2.0, log=True),
             "optim.lr": t.suggest_float("optim.lr", 1e-4, 1e-2, log=True),
             "optim.rho": t.suggest_float("optim.rho", 0.01, 0.2),
             "model.dropout": t.suggest_float("model.dropout", 0.0, 0.5),
             "loss.dsc_variant": t.suggest_categorical("loss.dsc_variant", ["figure", "code"])}
        status, reason, curve = "completed", "", []
        for epoch in range(1, epochs + 1):
            if p["optim.lr"] > 7e-3 and epoch == 3:
                status, reason = "diverged", f"loss became NaN at epoch {epoch}"
                break
            war = _objective_war(p, epoch)
            curve.append((epoch, war, 0.9 * war, 2.0 * (1 - war)))
            if not multi_objective:
                t.report(war, epoch)
                if t.should_prune():
                    status, reason = "stopped", f"ASHA stop at epoch {epoch}"
                    break
        if t.number == 5:
            status, reason, curve = "failed", "DataError: clip 17 unreadable", curve[:1]
        seconds = 15.0 * len(curve) * (1 + p["model.dropout"])
        if status in ("completed", "stopped"):  # Ray's OptunaSearch tells ASHA stops as complete
            study.tell(t, [curve[-1][1], seconds] if multi_objective else curve[-1][1])
        else:
            study.tell(t, state=optuna.trial.TrialState.FAIL)
        rows += [dict(trial=f"t{t.number:03d}", number=t.number, status=status, reason=reason,
                      duration_s=seconds, restarts=0, epoch=e, metric=m, value=v,
                      **{f"param.{k}": p[k] for k in _PARAMS})
                 for e, war, uar, loss in curve for m, v in
                 (("val_war", war), ("val_uar", uar), ("test_war", war - 0.01),
                  ("train_loss", loss), ("epoch_s", 15.0))]
    df = pd.DataFrame(rows)
    write_table(root / "trials.parquet", df)
    write_table(root / "trials.csv", df)


def make_demo_run(out: str | Path, name: str = "demo-sweep", *, n_trials: int = 24,
                  epochs: int = 6, robustness: bool = True, multi_objective: bool = False,
                  seed: int = 0) -> Path:
    """Write a complete demo run folder at out/name and return its path."""
    root = Path(out) / name
    root.mkdir(parents=True, exist_ok=False)
    rng = np.random.default_rng(seed)
    spec = {"description": "demo sweep (made-up objective)", "base": {"method": "hdf"},
            "params": {"loss.tau": {"type": "loguniform", "low": 0.02, "high": 2.0}},
            "objective": {"metric": ["war", "seconds"] if multi_objective else "war",
                          "mode": ["max", "min"] if multi_objective else "max", "split": "val"},
            "scheduler": {"name": "asha", "grace_period": 2, "reduction_factor": 2},
            "trials": n_trials, "seeds": [0, 1], "baselines": ["x3d_ce", "focal"]}
    (root / "study.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    env = {"python": "3.11.7", "platform": "Linux-x86_64", "cpus": 2, "gpu": None,
           "packages": {"torch": "2.14.1", "optuna": "5.0.0", "plotly": "7.1.0"},
           "git_commit": "0" * 40}
    (root / "env.json").write_text(json.dumps(env, indent=2))
    _run_study(root, name, n_trials, epochs, multi_objective)
    _write_models(root, rng, epochs, n_test=400)
    summary = {"study": name, "space": "search_spaces/demo.yaml", "trials": n_trials,
               "status_counts": {"completed": 9, "stopped": 14}, "best_trial": "t018",
               "pareto_front": ["t018"], "best_params": {"loss.tau": 0.16},
               "best_scores": {"val_war": 0.688}, "models": list(DEMO_MODELS),
               "duration_s": 5400.0}
    (root / "summary.json").write_text(json.dumps(summary, indent=2))
    if robustness:
        _write_robustness(root, rng, n_clips=300, seeds=2)
    return root
