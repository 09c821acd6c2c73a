"""BANet's training losses, term by term as in the official code.

Default terms (all weight 1 except the point loss, as both official launchers):

  angle  = mean_FREE(|cos q̂ - cos q| + |sin q̂ - sin q|) + mean_NORM |q̂ - q|
  scale  = mean |ŝ - s| over bodies x (x, y, z)
  point  = 100 * mean |(p̂ - p̂_root) - (p - p_root)| over the B + J points x xyz
  range  = mean_NORM (distance outside [lo, hi], 0 inside)
  total  = angle + scale + point + range

FREE are the coordinates compared through cos and sin because they wrap or
have wide ranges (official: pelvis tilt/list/rotation and both shoulders' three
angles); NORM are the other predicted coordinates (legs including the patella
`_beta` coordinates, lumbar, elbows, forearms, wrists). Global translations are
not predicted and not in any term. Points are the skeleton layer's mass and
joint centres (metres), so the point term is in centimetres-ish units.

Extras the official code implements but leaves out of the total, off by
default (weight 0); set a weight to use one:

  reprojection  L1 between projected predicted and ground-truth points in
                each view, in normalised crop coordinates ([-1, 1] over the
                crop); the prediction is placed at the ground-truth root since
                BANet predicts no global translation (official weight when
                used: 0.1).
  velocity      L1 of the frame-to-frame difference of root-relative points.
  acceleration  L1 of the second difference of root-relative points.
  scale_smoothness  variance of each body's (x, y, z) factors plus the variance
                over bodies of the factors' product: a prior towards uniform,
                mutually consistent scaling.

Every term is returned separately (unweighted), with `total` the weighted sum.
"""

from __future__ import annotations

import dataclasses
from typing import Mapping

import jax
import jax.numpy as jnp
import numpy as np

from banet_jax import geometry
from banet_jax.model.outputs import OutputLayout, root_relative, skeleton_points
from banet_jax.skeleton import coordinate_limit_penalty

# Coordinates the official code compares through cos/sin (its FREE_ROT set).
OFFICIAL_PERIODIC_COORDINATES = (
    'pelvis_tilt', 'pelvis_list', 'pelvis_rotation',
    'arm_flex_r', 'arm_add_r', 'arm_rot_r',
    'arm_flex_l', 'arm_add_l', 'arm_rot_l',
)


@dataclasses.dataclass(frozen=True)
class LossConfig:
  """Weights of the terms; the defaults are the official training set-up."""

  angle_weight: float = 1.0
  scale_weight: float = 1.0
  point_weight: float = 100.0
  range_weight: float = 1.0
  reprojection_weight: float = 0.0
  velocity_weight: float = 0.0
  acceleration_weight: float = 0.0
  scale_smoothness_weight: float = 0.0
  # None: the official names present in the model, else the root's rotations.
  periodic_coordinates: tuple[str, ...] | None = None


@dataclasses.dataclass(frozen=True, eq=False)
class CoordinateGroups:
  """(C,) float masks of the coordinate sets the angle and range terms use."""

  periodic: np.ndarray  # FREE
  plain: np.ndarray  # NORM, also the RANGE set


def coordinate_groups(layout: OutputLayout,
                      periodic_names: tuple[str, ...] | None = None) -> CoordinateGroups:
  """FREE and NORM masks for `layout.skeleton` (see module docstring)."""
  skel = layout.skeleton
  if periodic_names is None:
    periodic_names = tuple(n for n in OFFICIAL_PERIODIC_COORDINATES
                           if n in skel.coordinate_names)
    if not periodic_names:  # another model: the root's rotations wrap
      periodic_names = tuple(
          skel.coordinate_names[a.coordinate] for j in skel.joints
          if j.parent_body == -1 for a in j.rotations if a.coordinate >= 0)
  periodic = np.zeros(skel.num_coordinates, np.float32)
  for name in periodic_names:
    periodic[skel.coordinate_index(name)] = 1.0
  predicted = np.zeros(skel.num_coordinates, np.float32)
  predicted[layout.predicted] = 1.0
  if np.any(periodic > predicted):
    raise ValueError('periodic coordinates must be predicted ones (not global '
                     f'translations): {periodic_names}')
  return CoordinateGroups(periodic=periodic, plain=predicted - periodic)


def _masked_mean(values, mask):
  """Mean of values (..., C) over all leading axes and the masked C entries."""
  count = np.prod(values.shape[:-1]) * max(float(mask.sum()), 1.0)
  return jnp.sum(values * mask) / count


def angle_loss(pred_coords, gt_coords, groups: CoordinateGroups):
  """Official angle term; coordinates (..., C) in radians."""
  periodic = (jnp.abs(jnp.cos(pred_coords) - jnp.cos(gt_coords))
              + jnp.abs(jnp.sin(pred_coords) - jnp.sin(gt_coords)))
  return (_masked_mean(periodic, groups.periodic)
          + _masked_mean(jnp.abs(pred_coords - gt_coords), groups.plain))


def range_loss(layout: OutputLayout, pred_coords, groups: CoordinateGroups):
  """Official joint-limit term: mean over NORM of the distance outside the range."""
  penalty = coordinate_limit_penalty(layout.skeleton, pred_coords, form='banet')
  return _masked_mean(penalty, groups.plain)


def _project_to_crop(points, cameras):
  """World points (B, ..., N, 3) -> normalised crop coordinates (B, ..., V, N, 2).

  cameras: K (B, V, 3, 3), R (B, V, 3, 3), t (B, V, 3), crop_meta (B, V, 3)
  = (offset_x, offset_y, scale) and crop_size (int), in `banet_jax.geometry`'s
  conventions; axes of `points` between B and N (e.g. time) are shared by the views.
  """
  def one_view(pts, k, r, t, meta):
    return geometry.full_to_crop(geometry.project(pts, k, r, t), meta)

  per_view = jax.vmap(one_view, in_axes=(None, 0, 0, 0, 0), out_axes=-3)
  crop = jax.vmap(per_view)(points, cameras['K'], cameras['R'], cameras['t'],
                            cameras['crop_meta'])
  return crop / cameras['crop_size'] * 2.0 - 1.0


def banet_losses(layout: OutputLayout, pred_coords, pred_scales, gt_coords, gt_scales,
                 config: LossConfig = LossConfig(), *, gt_points=None,
                 cameras: Mapping[str, object] | None = None) -> dict[str, jnp.ndarray]:
  """All loss terms for one batch.

  Args:
    layout: from `banet_jax.model.outputs.output_layout`.
    pred_coords: (B, [T,] C) decoded predictions (global translations 0), rad/m.
    pred_scales: (B, [T,] Bo, 3) decoded body scales.
    gt_coords: (B, [T,] C) ground truth, including the global translation (it
      cancels in root-relative terms and places the prediction for reprojection).
    gt_scales: (B, [T,] Bo, 3).
    config: term weights.
    gt_points: optional precomputed `skeleton_points(layout, gt_coords, gt_scales)`.
    cameras: needed only for a non-zero reprojection weight: K, R, t, crop_meta
      and crop_size as in `_project_to_crop`.

  Returns:
    dict with scalar 'angle', 'scale', 'point', 'range', every enabled extra
    term (unweighted), and 'total' (weighted sum).
  """
  groups = coordinate_groups(layout, config.periodic_coordinates)
  pred_points = skeleton_points(layout, pred_coords, pred_scales)
  if gt_points is None:
    gt_points = skeleton_points(layout, gt_coords, gt_scales)
  pred_rel, gt_rel = root_relative(layout, pred_points), root_relative(layout, gt_points)
  terms = {
      'angle': angle_loss(pred_coords, gt_coords, groups),
      'scale': jnp.mean(jnp.abs(pred_scales - gt_scales)),
      'point': jnp.mean(jnp.abs(pred_rel - gt_rel)),
      'range': range_loss(layout, pred_coords, groups),
  }
  weights = {'angle': config.angle_weight, 'scale': config.scale_weight,
             'point': config.point_weight, 'range': config.range_weight}
  if config.reprojection_weight:
    if cameras is None:
      raise ValueError('reprojection_weight > 0 needs `cameras`')
    root = gt_points[..., layout.root_point:layout.root_point + 1, :]
    terms['reprojection'] = jnp.mean(jnp.abs(
        _project_to_crop(pred_rel + root, cameras) - _project_to_crop(gt_points, cameras)))
    weights['reprojection'] = config.reprojection_weight
  if config.velocity_weight or config.acceleration_weight:
    if pred_coords.ndim < 3:
      raise ValueError('velocity/acceleration terms need a time axis: coordinates '
                       f'(B, T, C), got {pred_coords.shape}')
    time_axis = pred_rel.ndim - 3
    if config.velocity_weight:
      terms['velocity'] = jnp.mean(jnp.abs(
          jnp.diff(pred_rel, axis=time_axis) - jnp.diff(gt_rel, axis=time_axis)))
      weights['velocity'] = config.velocity_weight
    if config.acceleration_weight:
      terms['acceleration'] = jnp.mean(jnp.abs(
          jnp.diff(pred_rel, n=2, axis=time_axis) - jnp.diff(gt_rel, n=2, axis=time_axis)))
      weights['acceleration'] = config.acceleration_weight
  if config.scale_smoothness_weight:
    within_body = jnp.mean(jnp.var(pred_scales, axis=-1))
    across_bodies = jnp.mean(jnp.var(jnp.prod(pred_scales, axis=-1), axis=-1))
    terms['scale_smoothness'] = within_body + across_bodies
    weights['scale_smoothness'] = config.scale_smoothness_weight
  terms['total'] = sum(weights[name] * terms[name] for name in weights)
  return terms
