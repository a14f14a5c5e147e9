"""Augmentation on the device: parameters drawn per item, pixels moved per batch by model_input."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from bench.config import load_config
from bench.data import build_dataset
from bench.data.clips import MEAN, STD, model_input
from bench.data.device_augment import PARAMS, ClipParams, apply_params
from bench.errors import ConfigError

CPU = torch.device("cpu")


def _clips(b: int = 3, t: int = 4, s: int = 32) -> torch.Tensor:
    return torch.randint(0, 256, (b, t, s, s, 3), generator=torch.Generator().manual_seed(0),
                         dtype=torch.uint8)  # (B, T, H, W, 3)


def _params(*rows: list[float]) -> torch.Tensor:
    return torch.tensor(rows, dtype=torch.float32)


def test_identity_and_flip_are_exact() -> None:
    x = _clips(2)
    ident = _params([0, 0, 32, 32, 0, 1, 0, 0], [0, 0, 32, 32, 0, 1, 0, 0])
    plain = model_input(x, CPU)  # (B, 3, T, H, W)
    assert torch.equal(model_input((x, ident), CPU), plain)
    flip = ident.clone()
    flip[:, 4] = 1
    assert torch.equal(model_input((x, flip), CPU), plain.flip(-1))


def test_crop_resizes_the_box_bilinearly_on_every_frame_alike() -> None:
    x = _clips(1)
    out = apply_params(x, _params([8, 4, 16, 24, 0, 1, 0, 0]), size=32)  # (1, 3, T, 32, 32)
    box = x[0, :, 8:24, 4:28].permute(3, 0, 1, 2).float()  # (3, T, 16, 24)
    ref = F.interpolate(box, size=(32, 32), mode="bilinear", align_corners=False)
    # inside: the same bilinear resampling; the outer ring may blend in the pixels just
    # outside the box (grid_sample reads the whole frame), where a crop-then-resize repeats the edge
    torch.testing.assert_close(out[0, ..., 1:-1, 1:-1], ref[..., 1:-1, 1:-1], rtol=0, atol=1e-3)


def test_brightness_and_contrast_clip_to_the_pixel_range() -> None:
    x = _clips(1)
    out = apply_params(x, _params([0, 0, 32, 32, 0, 1.2, 0.1, 0]), size=32)
    ref = (x[0].permute(3, 0, 1, 2).float() * 1.2 + 25.5).clamp(0, 255)
    torch.testing.assert_close(out[0], ref, rtol=0, atol=1e-3)
    normalised = model_input((x, _params([0, 0, 32, 32, 0, 1.2, 0.1, 0])), CPU)
    torch.testing.assert_close(normalised[0], (ref / 255 - MEAN) / STD, rtol=0, atol=1e-4)


def test_draws_stay_in_range_and_follow_the_ranges() -> None:
    draw, rng = ClipParams(), np.random.default_rng(0)
    p = np.stack([draw(rng, 64, 48) for _ in range(2000)])  # (N, 8)
    assert p.shape[1] == PARAMS
    y0, x0, h, w, flip, alpha, beta = p[:, :7].T
    assert (y0 >= 0).all() and (x0 >= 0).all() and (y0 + h <= 64).all() and (x0 + w <= 48).all()
    area = h * w / (64 * 48)
    assert area.min() >= 0.68 and area.max() <= 1.0
    assert 0.45 < flip.mean() < 0.55
    changed = alpha != 1.0
    assert 0.45 < changed.mean() < 0.55
    assert np.abs(alpha - 1).max() <= 0.2 and np.abs(beta).max() <= 0.2


def test_a_training_item_carries_its_params_and_is_a_function_of_seed_epoch_index() -> None:
    make = lambda: build_dataset("synthetic", split="train", preset="ci", num_frames=4, size=32,
                                 augment="device", seed=3)
    a, b = make(), make()
    (fa, pa), ya = a[5]
    (fb, pb), yb = b[5]
    assert fa.dtype == torch.uint8 and fa.shape == (4, 32, 32, 3) and pa.shape == (PARAMS,)
    assert torch.equal(fa, fb) and torch.equal(pa, pb) and ya == yb
    b.set_epoch(1)
    assert not torch.equal(b[5][0][1], pa)  # a new epoch, a new draw
    test = build_dataset("synthetic", split="test", preset="ci", num_frames=4, size=32,
                         augment="device")
    assert isinstance(test[0][0], torch.Tensor)  # evaluation: never augmented


def test_augment_on_is_checked() -> None:
    assert load_config().data.augment_on == "device"
    with pytest.raises(ConfigError, match="data.augment_on must be 'device' or 'cpu'"):
        load_config(overrides=["data.augment_on=gpu"])
