"""Differentiable penalties for coordinates outside their ranges."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from banet_jax.skeleton.skeleton import Skeleton

PENALTY_FORMS = ('banet', 'linear', 'squared')


def coordinate_limit_penalty(skel: Skeleton, q, *, form: str = 'banet',
                             mask=None, ranges=None, reduction: str = 'none'):
  """Penalty for each coordinate outside [min, max]: zero inside, growing outside.

  Args:
    skel: gives the ranges, `skel.coordinate_ranges` (C, 2).
    q: (..., C) coordinates in `skel.coordinate_names` order.
    form: 'banet' - the official BANet term: outside the range, the distance to
        the nearer bound, min(|q - lo|, |q - hi|); zero inside.
      'linear' - relu(lo - q) + relu(q - hi) (identical values to 'banet' for a
        non-empty range; kept separate so callers can say which they mean).
      'squared' - relu(lo - q)**2 + relu(q - hi)**2 (smooth at the bounds).
    mask: optional (C,) bool or 0/1 weights selecting coordinates (e.g. BANet's
      RANGE set); unselected coordinates give zero.
    ranges: optional (C, 2) override of the ranges.
    reduction: 'none' -> (..., C); 'sum' or 'mean' over the selected
      coordinates -> (...,).

  The gradient outside the range points back inside (its negative moves q
  towards the violated bound); inside it is exactly zero.
  """
  if form not in PENALTY_FORMS:
    raise ValueError(f'form must be one of {PENALTY_FORMS}, got {form!r}')
  q = jnp.asarray(q)
  ranges = np.asarray(skel.coordinate_ranges if ranges is None else ranges)
  if q.shape[-1] != ranges.shape[0]:
    raise ValueError(f'q has {q.shape[-1]} coordinates, ranges {ranges.shape[0]}')
  lo = jnp.asarray(ranges[:, 0], q.dtype)
  hi = jnp.asarray(ranges[:, 1], q.dtype)
  below, above = jax.nn.relu(lo - q), jax.nn.relu(q - hi)
  if form == 'banet':
    outside = (q < lo) | (q > hi)
    penalty = jnp.where(outside, jnp.minimum(jnp.abs(q - lo), jnp.abs(q - hi)), 0.0)
  elif form == 'linear':
    penalty = below + above
  else:
    penalty = below ** 2 + above ** 2
  weights = jnp.ones(q.shape[-1], q.dtype) if mask is None else jnp.asarray(mask, q.dtype)
  penalty = penalty * weights
  if reduction == 'none':
    return penalty
  if reduction == 'sum':
    return penalty.sum(-1)
  if reduction == 'mean':
    return penalty.sum(-1) / jnp.maximum(weights.sum(), 1.0)
  raise ValueError(f"reduction must be 'none', 'sum' or 'mean', got {reduction!r}")
