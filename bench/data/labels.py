"""The 7 basic emotions in DFEW's order; every data set maps to this order."""
from __future__ import annotations

__all__ = ["EMOTIONS", "NUM_CLASSES", "label_from_name"]

# DFEW labels 1..7 in its CSVs; index = DFEW label - 1.
EMOTIONS: tuple[str, ...] = ("happy", "sad", "neutral", "angry", "surprise", "disgust", "fear")
NUM_CLASSES = len(EMOTIONS)


def label_from_name(name: str) -> int:
    """0-based DFEW index of an emotion name, any case ("Angry" -> 3)."""
    key = name.strip().lower()
    if key not in EMOTIONS:
        raise KeyError(name)
    return EMOTIONS.index(key)
