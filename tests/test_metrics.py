"""Metrics against hand-computed cases."""
from __future__ import annotations

import math

import numpy as np
import pytest

from bench.data.labels import EMOTIONS
from bench.metrics import METRICS, confusion_matrix, per_class_recall, score


def test_confusion_and_recall_hand_case():
    y = [0, 0, 0, 1, 1, 2]
    p = [0, 0, 1, 1, 0, 2]
    cm = confusion_matrix(y, p, 4)
    assert cm.tolist() == [[2, 1, 0, 0], [1, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 0]]
    rec = per_class_recall(y, p, 4)
    assert rec[:3].tolist() == pytest.approx([2 / 3, 1 / 2, 1.0]) and math.isnan(rec[3])
    s = score(y, p, ["a", "b", "c", "d"])
    assert s["war"] == pytest.approx(4 / 6)
    assert s["uar"] == pytest.approx((2 / 3 + 1 / 2 + 1) / 3)  # absent class d not counted
    assert s["recall_b"] == pytest.approx(0.5)


@pytest.mark.parametrize("name", METRICS.names())
def test_metrics_perfect_and_worst(name):
    y = np.array([0, 1, 2, 3, 4, 5, 6, 6])
    assert METRICS.get(name)(y, y, 7) == 1.0
    assert METRICS.get(name)(y, (y + 1) % 7, 7) == 0.0


def test_uar_differs_from_war_under_imbalance():
    y = np.array([0] * 9 + [1])
    p = np.zeros(10, dtype=int)
    s = score(y, p, EMOTIONS)
    assert s["war"] == pytest.approx(0.9) and s["uar"] == pytest.approx(0.5)
