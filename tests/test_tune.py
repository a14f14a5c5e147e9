"""Study files, the define-by-run space and the pure result functions (no Ray)."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import optuna
import pandas as pd
import pytest
import yaml

from bench.errors import ConfigError
from bench.search.results import pareto_front, pick_best, trial_status, trials_table
from bench.search.run import TrialRecord, trial_name
from bench.search.spaces import DefineByRun, decode_params, load_study, study_from_dict, trial_config

ROOT = Path(__file__).resolve().parents[1]
# Study files (a sweep's `params`); comparison and ablation files are tested with their loaders.
SPACES = sorted(p for p in (ROOT / "search_spaces").glob("*.yaml")
                if "params" in yaml.safe_load(p.read_text()))
FIXED = sorted(p for p in (ROOT / "search_spaces").glob("*.yaml") if p not in SPACES)


def smoke_raw() -> dict:
    return yaml.safe_load((ROOT / "search_spaces" / "smoke.yaml").read_text())


@pytest.mark.parametrize("path", SPACES, ids=[p.stem for p in SPACES])
def test_shipped_spaces_validate_and_sample(path: Path) -> None:
    study = load_study(path)
    assert study.params and study.trials >= 1
    s = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0),
                            directions=["maximize"] * len(study.objective.metrics))
    for _ in range(5):  # every sampled point is a valid config
        t = s.ask()
        DefineByRun(study.params)(t)
        cfg = trial_config(study, decode_params(study, t.params))
        assert cfg.method == study.method


@pytest.mark.parametrize("path", FIXED, ids=[p.stem for p in FIXED])
def test_shipped_comparison_and_ablation_files_validate(path: Path) -> None:
    from bench.search.comparison import ablation_from_dict, comparison_from_dict

    raw = yaml.safe_load(path.read_text())
    load = ablation_from_dict if "factors" in raw else comparison_from_dict
    study = load(raw, name=path.stem, source=str(path))[0]
    assert study.trials >= 2 and len(study.seeds) >= 2


@pytest.mark.parametrize("edit, message", [
    (lambda r: r.update(bogus=1), "unknown key 'bogus'"),
    (lambda r: r["params"].update({"loss.tau": {"type": "loguniform", "low": 0.5, "high": 0.1}}),
     "params.loss.tau: low (0.5) must be < high (0.1)"),
    (lambda r: r["params"].update({"loss.tau": {"type": "loguniform", "low": 0, "high": 0.1}}),
     "loguniform parameter needs low > 0"),
    (lambda r: r["params"].update({"loss.tauu": {"type": "uniform", "low": 0.1, "high": 0.2}}),
     "Did you mean 'tau'"),
    (lambda r: r["params"].update({"loss.dsc_variant": {"type": "categorical", "choices": []}}),
     "choices must be a non-empty list"),
    (lambda r: r["params"].update({"loss.tau": {"type": "normal", "low": 0.1, "high": 0.2}}),
     "params.loss.tau.type: 'normal' is not allowed"),
    (lambda r: r.update(objective={"metric": "accuracy"}), "objective.metric: 'accuracy'"),
    (lambda r: r.update(baselines=["x3d_cee"]), "Did you mean 'x3d_ce'"),
    (lambda r: r["base"]["set"].update({"train.epochz": 2}), "unknown key 'epochz'"),
    (lambda r: r["params"].update({"optim.rho": {"type": "uniform", "low": -1.0, "high": 0.5}}),
     "optim.rho must be > 0"),
])
def test_bad_study_fails_with_one_line_naming_the_key(edit, message) -> None:
    raw = smoke_raw()
    edit(raw)
    with pytest.raises(ConfigError) as e:
        study_from_dict(raw, source="smoke.yaml")
    assert message in str(e.value) and "smoke.yaml" in str(e.value)
    assert "\n" not in str(e.value)


def test_conditional_parameter_sampled_only_when_its_condition_holds() -> None:
    raw = smoke_raw()
    raw["params"] = {
        "optim.asam": {"type": "categorical", "choices": [False, True]},
        "optim.rho": [
            {"type": "loguniform", "low": 0.01, "high": 0.5, "when": {"optim.asam": False}},
            {"type": "loguniform", "low": 0.5, "high": 2.0, "when": {"optim.asam": True}},
        ],
        "model.dam_stages": {"type": "categorical",
                             "choices": [[True, True, True, True], [False, False, True, True]]},
    }
    study = study_from_dict(raw, source="cond.yaml")
    s = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=1))
    seen = set()
    for _ in range(20):
        t = s.ask()
        DefineByRun(study.params)(t)
        values = decode_params(study, t.params)
        cfg = trial_config(study, values)
        lo, hi = (0.5, 2.0) if cfg.optim.asam else (0.01, 0.5)
        assert lo <= cfg.optim.rho <= hi
        assert len([k for k in t.params if k.startswith("optim.rho")]) == 1
        assert isinstance(cfg.model.dam_stages, list)
        seen.add(cfg.optim.asam)
    assert seen == {False, True}


def test_when_must_name_an_earlier_parameter() -> None:
    raw = smoke_raw()
    raw["params"]["optim.rho"] = {"type": "uniform", "low": 0.01, "high": 0.5,
                                  "when": {"optim.asam": True}}
    with pytest.raises(ConfigError, match="must be a parameter listed before it"):
        study_from_dict(raw, source="x.yaml")


def _rec(name: str, epochs: list[int], war: list[float], *, error: str = "",
         diverged: bool = False, pids: list[int] | None = None) -> TrialRecord:
    if not epochs:
        return TrialRecord(name, {"loss.tau": 0.1}, pd.DataFrame(), error, None, Path("."))
    df = pd.DataFrame({"epoch": epochs, "val_war": war, "val_uar": [w / 2 for w in war],
                       "diverged": [0] * (len(epochs) - 1) + [int(diverged)],
                       "reason": [""] * (len(epochs) - 1) + ["loss became nan" if diverged else ""],
                       "pid": pids or [1] * len(epochs), "time_this_iter_s": [1.0] * len(epochs)})
    return TrialRecord(name, {"loss.tau": 0.1}, df, error, None, Path("."))


def test_trial_status_and_table() -> None:
    study = study_from_dict(smoke_raw(), source="smoke.yaml")  # 2 epochs
    recs = [_rec("t001", [1, 2], [0.3, 0.5]),
            _rec("t002", [1], [0.1]),
            _rec("t003", [1], [float("nan")], diverged=True),
            _rec("t004", [1, 1, 2], [0.2, 0.25, 0.6], pids=[7, 8, 8]),  # restarted once
            _rec("t005", [], [], error="RayActorError: the actor died")]
    assert [trial_status(r, 2)[0] for r in recs] == \
        ["completed", "stopped", "diverged", "completed", "failed"]
    table = trials_table(study, recs)
    assert set(table.trial) == {f"t00{i}" for i in range(1, 6)}
    t4 = table[(table.trial == "t004") & (table.metric == "val_war")]
    assert list(t4.epoch) == [1, 2] and list(t4.value) == [0.25, 0.6]
    assert t4.restarts.iloc[0] == 1
    assert table[table.trial == "t003"].reason.iloc[0] == "loss became nan"
    assert "param.loss.tau" in table.columns
    best, front = pick_best(study, table)
    assert best == "t004" and front == ["t004"]


def test_pareto_front_hand_case() -> None:
    scores = pd.DataFrame({"a": [1.0, 0.5, 0.9, 0.2], "b": [0.1, 0.9, 0.1, 0.2]},
                          index=["x", "y", "z", "w"])
    assert pareto_front(scores, ["a", "b"], ["max", "max"]) == ["x", "y"]
    assert pareto_front(scores, ["a", "b"], ["min", "min"]) == ["z", "w"]


def test_trial_names_follow_creation_order() -> None:
    assert trial_name("3_loss.tau=0.1") == "t003"
    assert trial_name("12") == "t012"


@pytest.mark.parametrize("args, message", [
    (["--space", "nope.yaml"], "nope.yaml"),
    (["--resume", "/nonexistent/run"], "not a sweep run folder"),
    (["--space", "search_spaces/smoke.yaml", "--set", "train.epochz=1"], "unknown key 'epochz'"),
])
def test_cli_errors_are_one_line(args, message, tmp_path) -> None:
    p = subprocess.run([sys.executable, "-m", "bench.tune", *args, "--out", str(tmp_path)],
                       capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert p.returncode == 2, p.stderr
    assert p.stderr.startswith("error:") and message in p.stderr
    assert p.stderr.count("\n") == 1
    assert not any(tmp_path.iterdir())  # nothing half-written


def test_cli_unwritable_run_folder_is_one_line(tmp_path) -> None:
    blocker = tmp_path / "a-file"  # even root cannot create a folder under a file
    blocker.write_text("")
    p = subprocess.run([sys.executable, "-m", "bench.tune", "--space", "search_spaces/smoke.yaml",
                        "--out", str(blocker / "runs"), "--name", "x"],
                       capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert p.returncode == 2 and "cannot write the run folder" in p.stderr, p.stderr
    assert p.stderr.count("\n") == 1


def _interrupt():
    from bench.errors import Terminated

    return Terminated(15)


@pytest.mark.parametrize("error", [
    lambda: RuntimeError("bug before Tune started"),  # a bug still shows its traceback
    lambda: KeyboardInterrupt(),                        # Ctrl-C while ray.init connects
    _interrupt,                                         # SIGTERM at the same moment
], ids=["bug", "sigint", "sigterm"])
def test_crash_before_any_trial_leaves_no_run_folder(tmp_path, monkeypatch, error) -> None:
    """Whatever stops the sweep before Tune ran, no half-made run folder stays."""
    import bench.search.sweep as sweep
    import bench.tune as tune_cli

    exc = error()

    def broken(*a, **k):
        raise exc

    monkeypatch.setattr(sweep, "run_sweep", broken)
    with pytest.raises(type(exc)):
        tune_cli.main(["--space", "search_spaces/smoke.yaml", "--out", str(tmp_path),
                       "--name", "x"])
    assert not any(tmp_path.iterdir())


def test_address_of_a_plain_tcp_listener_fails_fast_without_a_run_folder(tmp_path) -> None:
    """Something that is not Ray listens where Ray would dial: one line in seconds, no folder."""
    import socket
    import time

    with socket.socket() as listener:  # every interface: Ray dials a routable one, not loopback
        listener.bind(("0.0.0.0", 0))
        listener.listen()
        port = listener.getsockname()[1]
        t0 = time.monotonic()
        p = subprocess.run([sys.executable, "-m", "bench.tune", "--space", "search_spaces/smoke.yaml",
                            "--address", f"127.0.0.1:{port}", "--out", str(tmp_path), "--name", "x"],
                           capture_output=True, text=True, cwd=ROOT, timeout=60)
        seconds = time.monotonic() - t0
    assert p.returncode == 2, p.stderr
    assert p.stderr.startswith("error:") and p.stderr.count("\n") == 1, p.stderr
    assert "is not a Ray head" in p.stderr and f"127.0.0.1:{port}" in p.stderr
    assert seconds < 15
    assert not any(tmp_path.iterdir())
