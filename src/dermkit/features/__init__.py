"""Frozen-feature caching: compute a model's frozen prefix once, train only its tail.

A partly frozen backbone spends nearly all of its training time recomputing the same
activations of its frozen layers, epoch after epoch. When nothing random happens
before the cut (no random augmentation of the input), those activations are a pure
function of the image, so dermkit computes them once per image, stores them on disk
beside the decoded-image cache, and fits only the layers after the cut.

- :mod:`.cut` splits a functional model at ``ModelFactory.frozen_prefix_end`` into a
  prefix and a tail that share the original layers (training the tail trains the
  model).
- :mod:`.views` lists the exact, finite augmentations that survive caching: the eight
  flips and right-angle turns of a square image.
- :mod:`.store` keeps the activations on disk, keyed by everything that changes them.
- :mod:`.predict` scores images whose activations are stored by the tail alone, which
  makes test-time augmentation of a run's cached images several times cheaper.
"""

from dermkit.features.cut import ModelCut, split_at
from dermkit.features.store import FeatureCache, prefix_key
from dermkit.features.views import DIHEDRAL_VIEWS, apply_view

__all__ = [
    "DIHEDRAL_VIEWS",
    "FeatureCache",
    "ModelCut",
    "apply_view",
    "prefix_key",
    "split_at",
]
