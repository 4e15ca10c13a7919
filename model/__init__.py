"""Dual-ViT: architecture, weights, preprocessing and attention capture.

Importing the package registers the Dual-ViT variants with timm (``timm.create_model("dualvit_s")``).
"""
from model import registry  # noqa: F401
