"""Per-body scale factors of a made-up subject, for tests that scale the project model
with OpenSim's ScaleTool (tests/test_jax_ik.py, tests/test_generation_determinism.py)."""

from __future__ import annotations

import numpy as np


def subject_scale_factors(skel, seed: int) -> np.ndarray:
  """(B, 3) uniform per-body factors in [0.9, 1.1], equal within the bodies the ScaleTool
  scales together (femur + patella, talus + calcaneus + toes, ulna + radius)."""
  rng = np.random.default_rng(seed)
  scales = np.repeat(rng.uniform(0.9, 1.1, (skel.num_bodies, 1)), 3, axis=1)
  for group in (('femur', 'patella'), ('talus', 'calcn', 'toes'), ('ulna', 'radius')):
    for side in ('r', 'l'):
      for other in group[1:]:
        scales[skel.body_index(f'{other}_{side}')] = scales[skel.body_index(f'{group[0]}_{side}')]
  return scales
