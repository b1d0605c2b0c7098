"""Binarized-CNN engines: the streaming 3x3 conv layer, full or separable kernels (BCNNw/SF)."""

from .conv import BCNNConv

__all__ = ["BCNNConv"]
