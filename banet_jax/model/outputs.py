"""What BANet predicts for a skeleton model, and how raw outputs become coordinates.

BANet's head emits one flat vector per frame: the predicted coordinates, then
3 scale factors per body (x, y, z). For the project model (and the official
Rajagopal-type model) that is 36 + 22 * 3 = 102 numbers: every coordinate
except the pelvis translations, which are never predicted (global position is
not estimated) and are decoded as 0.

The layout follows the skeleton: any `.osim` the skeleton layer loads works.
"Global translation" means the translational coordinates of joints whose parent
is ground.

Decoding (official code): coordinates are the raw values in radians (or metres);
scales are `raw / 8 + 1`, so a zero output means the generic model. The skeleton
layer receives `abs(scales)`, as the official OSIM layer does.
"""

from __future__ import annotations

import dataclasses

import jax.numpy as jnp
import numpy as np

from banet_jax.skeleton import Skeleton, forward_kinematics

# raw -> scale divisor of the official decoding.
SCALE_DIVISOR = 8.0


@dataclasses.dataclass(frozen=True, eq=False)
class OutputLayout:
  """Index bookkeeping between the network's flat output and a skeleton.

  Attributes:
    skeleton: the model the outputs refer to.
    predicted: (P_c,) int, indices into `skeleton.coordinate_names` of the
      predicted coordinates, in model order.
    global_translation: (G,) int, coordinates that are never predicted.
    root_point: index into `skeleton_points(...)` of the root (the joint centre
      of the first ground joint), subtracted for root-relative points.
  """

  skeleton: Skeleton
  predicted: np.ndarray
  global_translation: np.ndarray
  root_point: int

  @property
  def num_predicted(self) -> int:
    return len(self.predicted)

  @property
  def num_bodies(self) -> int:
    return self.skeleton.num_bodies

  @property
  def out_dim(self) -> int:
    """Length of the per-frame output vector: P_c + 3 * B (102 for BANet)."""
    return self.num_predicted + 3 * self.num_bodies

  @property
  def predicted_names(self) -> tuple[str, ...]:
    return tuple(self.skeleton.coordinate_names[i] for i in self.predicted)

  @property
  def num_points(self) -> int:
    """Points per frame: B mass centres + J joint centres (44 for BANet)."""
    return self.skeleton.num_bodies + len(self.skeleton.joint_names)


def output_layout(skel: Skeleton) -> OutputLayout:
  """The output layout for `skel` (see module docstring)."""
  ground_joints = [j for j in skel.joints if j.parent_body == -1]
  if not ground_joints:
    raise ValueError(f'{skel.source}: no joint to ground; cannot find the root')
  excluded = sorted({axis.coordinate for joint in ground_joints
                     for axis in joint.translations
                     if axis.coordinate >= 0 and skel.translational[axis.coordinate]})
  predicted = np.array([i for i in range(skel.num_coordinates) if i not in excluded],
                       np.int32)
  root_joint = skel.joints.index(ground_joints[0])
  return OutputLayout(skeleton=skel, predicted=predicted,
                      global_translation=np.array(excluded, np.int32),
                      root_point=skel.num_bodies + root_joint)


def decode(layout: OutputLayout, raw):
  """Raw network outputs -> full coordinate vector and body scales.

  Args:
    layout: from `output_layout`.
    raw: (..., out_dim).

  Returns:
    coordinates (..., C) with the global translations set to 0, and
    scales (..., B, 3) = raw_scales / 8 + 1 (not yet `abs`-ed).
  """
  raw = jnp.asarray(raw)
  if raw.shape[-1] != layout.out_dim:
    raise ValueError(f'raw outputs must have {layout.out_dim} entries in the last '
                     f'axis for {layout.skeleton.model_name!r}, got {raw.shape}')
  batch = raw.shape[:-1]
  coords = jnp.zeros(batch + (layout.skeleton.num_coordinates,), raw.dtype)
  coords = coords.at[..., layout.predicted].set(raw[..., :layout.num_predicted])
  scales = raw[..., layout.num_predicted:].reshape(batch + (layout.num_bodies, 3))
  return coords, scales / SCALE_DIVISOR + 1.0


def encode(layout: OutputLayout, coordinates, scales):
  """Inverse of `decode` (global translations dropped): (..., C), (..., B, 3) -> raw."""
  coordinates, scales = jnp.asarray(coordinates), jnp.asarray(scales)
  raw_scales = (scales - 1.0) * SCALE_DIVISOR
  flat = raw_scales.reshape(raw_scales.shape[:-2] + (3 * layout.num_bodies,))
  return jnp.concatenate([coordinates[..., layout.predicted], flat], axis=-1)


def skeleton_points(layout: OutputLayout, coordinates, scales):
  """BANet's 3-D points: body mass centres then joint centres, metres.

  Args:
    layout: from `output_layout`.
    coordinates: (..., C).
    scales: (..., B, 3); `abs` is applied first, as in the official layer.

  Returns:
    (..., B + J, 3) in the ground frame (44 points for the project model).
  """
  fk = forward_kinematics(layout.skeleton, coordinates, jnp.abs(scales))
  return jnp.concatenate([fk.centers_of_mass, fk.joint_centers], axis=-2)


def root_relative(layout: OutputLayout, points):
  """(..., N, 3) points minus the root point."""
  return points - points[..., layout.root_point:layout.root_point + 1, :]
