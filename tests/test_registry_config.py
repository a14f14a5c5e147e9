"""Registry errors, config validation and override parsing."""
from __future__ import annotations

from pathlib import Path

import pytest

from bench.config import Config, list_methods, load_config, parse_overrides
from bench.errors import ConfigError, UnknownNameError
from bench.registry import Registry


def test_registry_unknown_name_suggests_and_lists():
    reg: Registry = Registry("thing")

    @reg.register("alpha")
    def _a(*, x: int = 1):
        return x

    reg.register("beta")(lambda: 2)
    with pytest.raises(UnknownNameError) as e:
        reg.get("alpah")
    msg = str(e.value)
    assert "Did you mean 'alpha'" in msg and "alpha, beta" in msg
    with pytest.raises(ConfigError, match="no option 'y'"):
        reg.build("alpha", y=3)
    assert reg.build("alpha", x=5) == 5
    with pytest.raises(ValueError, match="twice"):
        reg.register("alpha")(lambda: 0)


def test_methods_resolve_and_validate():
    names = list_methods()
    assert {"x3d_ce", "x3d_sam", "x3d_dam", "x3d_dsm", "hdf", "focal", "logit_adjust",
            "class_balanced"} <= set(names)
    hdf = load_config(method="hdf")
    assert hdf.model.dam_stages == [True] * 4 and hdf.optim.sam and hdf.loss.name == "dsm"
    assert hdf.loss.options["dsc_variant"] == "figure"
    ce = load_config(method="x3d_ce")
    assert ce.model.dam_stages == [False] * 4 and not ce.optim.sam and ce.loss.name == "ce"


@pytest.mark.parametrize("method", list_methods())
def test_every_method_builds_its_components(method):
    from bench.losses import LOSSES
    from bench.models import MODELS
    from bench.registry import check_kwargs

    cfg = load_config(method=method)
    assert cfg.model.name in MODELS
    check_kwargs(LOSSES.get(cfg.loss.name), cfg.loss.options, cfg.loss.name)


def test_overrides_beat_file_and_method(tmp_path: Path):
    f = tmp_path / "c.yaml"
    f.write_text("method: hdf\noptim: {lr: 0.01}\ntrain: {epochs: 3}\n")
    cfg = load_config(f, overrides=["optim.lr=1e-4", "loss.tau=0.1", "data.fold=2"])
    assert cfg.method == "hdf" and cfg.optim.lr == 1e-4 and cfg.train.epochs == 3
    assert cfg.loss.options["tau"] == 0.1 and cfg.data.options["fold"] == 2
    assert cfg.optim.sam  # from the method
    assert Config.from_dict(cfg.to_dict()) == cfg  # snapshot round-trips


@pytest.mark.parametrize("text,needle", [
    ("optim: {lrr: 0.1}\n", "unknown key 'lrr'. Did you mean 'lr'?"),
    ("optim: {lr: -1}\n", "optim.lr must be > 0"),
    ("optim: {sam: 'yes'}\n", "optim: sam must be true or false"),
    ("train: {epochs: 2.5}\n", "epochs must be int"),
    ("model: {dam_stages: [true]}\n", "dam_stages must list 4"),
    ("data: {size: 50}\n", "multiple of 32"),
    ("modle: {}\n", "unknown key 'modle'. Did you mean 'model'?"),
    ("optim: [1, 2\n", "is not valid YAML"),
    ("- 1\n- 2\n", "expected a mapping"),
])
def test_bad_yaml_gives_one_clear_line(tmp_path: Path, text, needle):
    f = tmp_path / "bad.yaml"
    f.write_text(text)
    with pytest.raises(ConfigError) as e:
        load_config(f)
    msg = str(e.value)
    assert needle in msg and "\n" not in msg and str(f) in msg


def test_unknown_method_and_bad_override():
    with pytest.raises(ConfigError, match="Did you mean 'hdf'"):
        load_config(method="hfd")
    with pytest.raises(ConfigError, match="section.key=value"):
        parse_overrides(["optim.lr"])
    assert parse_overrides(["a.b=1", "a.c=[1, 2]", "d=x"]) == {"a": {"b": 1, "c": [1, 2]}, "d": "x"}
