"""PyTorch reference of the effyolo detector (used for export, fixtures and training only)."""

from .model import DetectorConfig, EffYolo  # noqa: F401
