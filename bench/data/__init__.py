"""Data: readers for DFEW, FERV39k and video lists, one clip Dataset, and a registry.

    build_dataset("dfew", split="train", root=..., fold=1, augment=True)  # -> ClipDataset
"""
from __future__ import annotations

from bench.data.clips import ClipDataset, to_tensor, uniform_indices
from bench.data.datasets import DATASETS, build_dataset, join_metadata
from bench.data.dfew import read_dfew_split
from bench.data.ferv39k import read_ferv39k_split
from bench.data.labels import EMOTIONS, NUM_CLASSES, label_from_name
from bench.data.records import ClipRecord, RecordList
from bench.data.transforms import build_train_transform
from bench.data.video import read_video_list

__all__ = [
    "DATASETS",
    "EMOTIONS",
    "NUM_CLASSES",
    "ClipDataset",
    "ClipRecord",
    "RecordList",
    "build_dataset",
    "build_train_transform",
    "join_metadata",
    "label_from_name",
    "read_dfew_split",
    "read_ferv39k_split",
    "read_video_list",
    "to_tensor",
    "uniform_indices",
]
