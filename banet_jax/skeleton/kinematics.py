"""Forward kinematics of a `Skeleton` in JAX: coordinates (+ body scales) -> poses.

The tree is unrolled at trace time, joint by joint, parents first. Rotation
matrices and vectors are kept as 3x3 / 3 Python lists of entries, each entry a
Python float (known at trace time) or a batched array, so that the many zeros
and ones of OpenSim's axis-aligned joints and constant offsets cost nothing:
XLA receives only the arithmetic that is really needed. This is what makes the
layer fast on CPU (see benchmarks/skeleton_fk.py) as well as on accelerators.
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from banet_jax.skeleton.skeleton import AxisMotion, Skeleton, axis_angle_matrix


class FKResult(NamedTuple):
  """Poses in the ground frame (metres). `...` is the batch shape of `q`."""

  body_positions: jax.Array  # (..., B, 3) origin of each body
  body_rotations: jax.Array  # (..., B, 3, 3) v_ground = R @ v_body
  joint_centers: jax.Array  # (..., J, 3) origin of each joint's child-side frame
  centers_of_mass: jax.Array  # (..., B, 3)
  markers: jax.Array  # (..., M, 3)


def forward_kinematics(skel: Skeleton, q, scales=None,
                       enforce_couplers: bool = False) -> FKResult:
  """Positions and orientations of bodies, joint centres, mass centres and markers.

  Args:
    skel: from `load_osim`.
    q: (..., C) coordinates in `skel.coordinate_names` order, radians and metres.
      float32 or float64 (integers are promoted to the default float type).
    scales: optional (..., B, 3) per-body x/y/z scale factors relative to the
      model in the file, in `skel.body_names` order; broadcasts against q's batch
      shape. Applied as OpenSim's `Model::scale` (preserveMassDist=true) would.
    enforce_couplers: if True, each dependent coordinate of an enforced
      CoordinateCouplerConstraint is replaced by `scale_factor * f(independent)`,
      as OpenSim's assembler sets it; otherwise q is used as given.

  Returns:
    FKResult; works under jit, vmap and grad.
  """
  q = jnp.asarray(q)
  if not jnp.issubdtype(q.dtype, jnp.floating):
    q = q.astype(jnp.result_type(float))
  if q.ndim < 1 or q.shape[-1] != skel.num_coordinates:
    raise ValueError(f'q must have shape (..., {skel.num_coordinates}) for '
                     f'{skel.model_name!r}, got {q.shape}')
  batch = q.shape[:-1]
  if scales is not None:
    scales = jnp.asarray(scales)
    if scales.ndim < 2 or scales.shape[-2:] != (skel.num_bodies, 3):
      raise ValueError(f'scales must have shape (..., {skel.num_bodies}, 3), '
                       f'got {scales.shape}')
    _check_coupler_scales(skel, scales)
    dtype = jnp.promote_types(q.dtype, scales.dtype)
    batch = jnp.broadcast_shapes(batch, scales.shape[:-2])
    q, scales = q.astype(dtype), scales.astype(dtype)
  if enforce_couplers:
    q = apply_couplers(skel, q, scales)
  return _forward(skel, q, scales, batch)


def _check_coupler_scales(skel: Skeleton, scales):
  """Refuse what OpenSim's Model::scale refuses: non-uniform factors on the parent
  body of a translational coupler-dependent coordinate. Only concrete values can
  be checked; under jit the x factor is used, as for uniform factors."""
  if isinstance(scales, jax.core.Tracer):
    return
  for c in skel.couplers:
    if c.scale_body >= 0:
      factors = np.asarray(scales[..., c.scale_body, :])
      if np.any(factors != factors[..., :1]):
        raise ValueError(
            f'{skel.source}: body {skel.body_names[c.scale_body]!r} needs uniform scale '
            f'factors (x = y = z): coupler {c.name!r} drives the translational coordinate '
            f'{skel.coordinate_names[c.dependent]!r} of a joint whose parent is this body, '
            'and OpenSim refuses non-uniform scaling there')


def apply_couplers(skel: Skeleton, q, scales=None):
  """q (..., C) with each enforced coupler's dependent coordinate computed from its
  independent one (in dependency order); scales (..., B, 3) or None."""
  q = jnp.asarray(q)
  scales = None if scales is None else jnp.asarray(scales)
  for c in skel.couplers:
    value = c.scale * c.function(q[..., c.independent])
    if scales is not None and c.scale_body >= 0:
      value = value * scales[..., c.scale_body, 0]
    q = q.at[..., c.dependent].set(value)
  return q


# ---- small symbolic 3-vectors and 3x3 matrices -------------------------------
# An entry is a Python float (a trace-time constant) or an array of the batch shape.

def _mul(a, b):
  if isinstance(a, float):
    if a == 0.0 or (isinstance(b, float) and b == 0.0):
      return 0.0
    if a == 1.0:
      return b
    if a == -1.0:
      return -b
  elif isinstance(b, float):
    return _mul(b, a)
  return a * b


def _add(a, b):
  if isinstance(a, float) and a == 0.0:
    return b
  if isinstance(b, float) and b == 0.0:
    return a
  return a + b


def _dot(row, col):
  return functools.reduce(_add, (_mul(x, y) for x, y in zip(row, col)), 0.0)


def _matmul(a, b):
  cols = list(zip(*b))
  return [[_dot(row, col) for col in cols] for row in a]


def _matvec(a, v):
  return [_dot(row, v) for row in a]


def _vadd(u, v):
  return [_add(x, y) for x, y in zip(u, v)]


def _vsub(u, v):
  return [_add(x, _mul(-1.0, y)) for x, y in zip(u, v)]


def _const(m):
  return [[float(x) for x in row] for row in np.asarray(m)]


def _rotation(axis, angle):
  """Rodrigues' formula with trace-time zeros for canonical axes."""
  if isinstance(angle, float):
    return _const(axis_angle_matrix(axis, angle))
  c, s = jnp.cos(angle), jnp.sin(angle)
  one_minus_c = None
  a = [float(x) for x in axis]
  k = [[0.0, -a[2], a[1]], [a[2], 0.0, -a[0]], [-a[1], a[0], 0.0]]
  rows = []
  for i in range(3):
    row = []
    for j in range(3):
      if i == j:
        row.append(_add(a[i] * a[i], _mul(1.0 - a[i] * a[i], c)))
      else:
        outer = a[i] * a[j]
        if outer != 0.0 and one_minus_c is None:
          one_minus_c = 1.0 - c
        row.append(_add(_mul(outer, one_minus_c) if outer != 0.0 else 0.0,
                        _mul(k[i][j], s)))
    rows.append(row)
  return rows


def _identity():
  return _const(np.eye(3))


# ---- the tree ---------------------------------------------------------------
# Internally the batch is flattened to N and kept as the LAST (contiguous) axis,
# so that every entry is an (N,) vector and all arithmetic vectorises over poses.
# Each body's pose is composed symbolically from its parent's, then materialised
# behind an optimization barrier (see `materialize` in `_forward`).

def _stack_vec(v, n, dtype):
  return jnp.stack([jnp.broadcast_to(jnp.asarray(x, dtype), (n,)) for x in v])


def _stack_mat(m, n, dtype):
  return jnp.stack([_stack_vec(row, n, dtype) for row in m])


def _forward(skel: Skeleton, q, scales, batch) -> FKResult:
  dtype = q.dtype
  n = int(np.prod(batch, dtype=np.int64))
  q_t = jnp.broadcast_to(q, batch + q.shape[-1:]).reshape(n, -1).T  # (C, N)
  s_t = None
  if scales is not None:  # (B, 3, N)
    s_t = jnp.broadcast_to(scales, batch + scales.shape[-2:]).reshape(n, -1, 3).transpose(1, 2, 0)

  def body_scale(b):
    if s_t is None or b < 0:
      return [1.0, 1.0, 1.0]
    return [s_t[b, k] for k in range(3)]

  def value(motion: AxisMotion):
    f = motion.function
    return f.constant_value() if f.is_constant else f(q_t[motion.coordinate])

  def materialize(r, p):
    """Stack a body's pose to one (12, N) array behind an optimization barrier.

    This bounds every expression to one joint: without it XLA fuses the whole tree
    into each output entry, and compile time explodes."""
    flat = jax.lax.optimization_barrier(
        _stack_vec([x for row in r for x in row] + list(p), n, dtype))
    return [[flat[3 * i + k] for k in range(3)] for i in range(3)], [flat[9 + k] for k in range(3)]

  num_bodies = skel.num_bodies
  poses: list = [None] * num_bodies  # body -> symbolic (R, p) in ground
  ground = (_identity(), [0.0, 0.0, 0.0])
  for j in skel.joint_order:
    joint = skel.joints[j]
    s_parent, s_child = body_scale(joint.parent_body), body_scale(joint.child_body)
    # Mobilizer X_FM: body-fixed rotation sequence, translation expressed in F.
    r_fm = _identity()
    for motion in joint.rotations:
      r_fm = _matmul(r_fm, _rotation(motion.axis, value(motion)))
    p_fm = [0.0, 0.0, 0.0]
    for motion in joint.translations:
      amount = value(motion)
      if motion.scale_axis is not None and s_t is not None and joint.parent_body >= 0:
        amount = _mul(_dot([float(x) for x in motion.scale_axis], s_parent), amount)
      p_fm = _vadd(p_fm, [_mul(float(a), amount) for a in motion.axis])
    # Child body in parent body: X_PF * X_FM * inverse(X_CM).
    r_pf = _const(joint.parent_rotation)
    r_local = _matmul(_matmul(r_pf, r_fm), _const(joint.child_rotation.T))
    p_m = _vadd(_matvec(_const(joint.parent_offset), s_parent), _matvec(r_pf, p_fm))
    p_local = _vsub(p_m, _matvec(r_local, _matvec(_const(joint.child_offset), s_child)))
    r_parent, p_parent = poses[joint.parent_body] if joint.parent_body >= 0 else ground
    poses[joint.child_body] = materialize(
        _matmul(r_parent, r_local), _vadd(p_parent, _matvec(r_parent, p_local)))

  def fixed_points(bodies, offsets):
    """(K, 3, N) ground positions of points offsets[k] @ s_body on bodies[k] (-1: ground)."""
    points = []
    for b, offset in zip(bodies, offsets):
      local = _matvec(_const(offset), body_scale(int(b)))
      if b >= 0:
        r, p = poses[b]
        local = _vadd(p, _matvec(r, local))
      points.append(_stack_vec(local, n, dtype))
    return jnp.stack(points) if points else jnp.zeros((0, 3, n), dtype)

  def out(x):  # (K, 3, [3,] N) -> (*batch, K, 3, [3])
    return jnp.moveaxis(x, -1, 0).reshape(batch + x.shape[:-1])

  if num_bodies:
    body_positions = jnp.stack([_stack_vec(p, n, dtype) for _, p in poses])
    body_rotations = jnp.stack([_stack_mat(r, n, dtype) for r, _ in poses])
  else:  # a model of ground (and markers on it) only
    body_positions, body_rotations = jnp.zeros((0, 3, n), dtype), jnp.zeros((0, 3, 3, n), dtype)
  return FKResult(
      body_positions=out(body_positions),
      body_rotations=out(body_rotations),
      # The child-side frame M sits at child_offset @ s_child in the child body.
      joint_centers=out(fixed_points([j.child_body for j in skel.joints],
                                     [j.child_offset for j in skel.joints])),
      centers_of_mass=out(fixed_points(
          range(num_bodies), [np.diag(c) for c in skel.body_mass_centers])),
      markers=out(fixed_points(skel.marker_bodies, skel.marker_offsets)),
  )
