"""Datasets: each yields :class:`~iiie.data.base.Sample` (request + ground truth)."""

from iiie.data.base import Dataset, GroundTruth, Sample

__all__ = ["Dataset", "GroundTruth", "Sample"]
