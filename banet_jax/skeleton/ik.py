"""Batched inverse kinematics on the JAX skeleton layer: the fast path of the alignment.

    skel = load_osim(scaled_model_path)            # e.g. the ScaleTool's output
    q, errors = solve_ik(skel, markers, weights)   # markers (T, M, 3) metres

Minimises, for every frame independently, the objective of OpenSim's IK

    sum_i w_i || x_i(q) - x_i^exp ||^2

with the coupler constraints satisfied exactly: only the independent, unlocked
coordinates are unknowns; each coupler's dependent coordinate is filled in by
`banet_jax.skeleton.apply_couplers` and locked coordinates stay at the model's
default value (what OpenSim's solver does). Clamped coordinates stay in their
range (OpenSim bounds them in its optimiser): an unknown on a bound that the
descent direction pushes outwards is held there for that step (an active set; the
others are solved without it), and every step is projected onto the ranges.

Solver: Levenberg-Marquardt on the stacked weighted residuals (3M per frame),
batched over frames. Each iteration evaluates the forward kinematics once and
the marker Jacobian from the posed joint axes (`marker_jacobian`: for a rotation
about axis w through joint centre o, dx/dq = f'(q) w x (x - o); for a
translation along v, f'(q) s v; chained through the couplers), solves the damped
normal equations (J'J + lambda diag(J'J)) dx = -J'r for every frame, accepts the
step where the cost decreased (lambda / 3) and rejects it otherwise (lambda * 10).
The loop (`lax.while_loop`) stops when no frame gains (or, after a rejection,
is predicted to gain) more than `tol` of its cost, or after `iters` iterations.
The analytic Jacobian equals the FK's forward-mode derivative (tested against
finite differences); the solver compiles in about half the time it takes with
`jax.linearize` of the whole tree (measured ~20 s against ~50 s on a loaded
2-core CPU) and each iteration is cheaper.

Starting point (when `init` is None), per frame and without any solve:
* every joint made of three identity rotations about orthogonal axes (the root,
  hips, lumbar and shoulders of the project model) gets the Euler angles of the
  relative rotation between rigid (weighted Kabsch) fits of its parent's and
  child's markers, on the Euler branch that respects the coordinate ranges; the
  root's translations come from the root body's fit;
* every other coordinate starts at its default.
Then a coarse-to-fine schedule (`hierarchical`) solves the tree level by level:
stage k frees only the coordinates first seen by markers on bodies of depth k
(pelvis; hips and lumbar; knees and shoulders; elbows; ankles, subtalar and
pro-supination; mtp and wrists), holding the levels above, and fits them to the
markers down to that depth; the last stage frees everything. Holding the
proximal joints keeps a distal error from being absorbed by them (e.g. a
shoulder near gimbal lock sliding onto the other Euler branch). With it the
batched solve does not depend on frame order or heading: poses drawn uniformly
over the full coordinate ranges all converged to zero residual (3 x 128 tried).

`keyframe_stride=k` solves only every k-th frame that way, then all frames
(batched, no coarse stages) from their nearest keyframe's solution: about 3x
fewer frame-iterations on smooth clips, the same optimum. `sequential=True`
instead solves frame after frame with a `lax.scan`, each frame starting from the
previous solution (what OpenSim's IK tool does); it only suits smooth
trajectories and gives the accelerator one frame at a time.

Programs are jit-compiled once per skeleton *structure*, marker selection, shapes
and options. Skeletons that differ only in numbers -- subject models scaled from one
generic model: joint offsets and scaled translation functions (per-body factors),
placed markers, ranges, defaults -- share them, their numbers passed as traced
arguments (`_template_for`). Labelling many subjects in one process, only the
first clip compiles (~20-30 s on a loaded 2-core CPU); later 64-frame clips of
any subject take ~0.1 s (float32, keyframes every 8).
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Sequence
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from banet_jax.skeleton import Skeleton, apply_couplers, forward_kinematics
from banet_jax.skeleton import functions as skel_functions


@dataclasses.dataclass(frozen=True)
class IKSolution:
  """Result of `solve_ik`; unpacks as `coordinates, marker_errors = solve_ik(...)`."""

  coordinates: jax.Array  # (T, C) rad / m in skel.coordinate_names order
  marker_errors: jax.Array  # (T, M) m, distance of each model marker to its target
  cost: jax.Array  # (T,) sum_i w_i * error_i**2 at the solution (m^2)
  iterations: jax.Array  # () Levenberg-Marquardt iterations run (the batch's maximum;
  # summed over frames when sequential; keyframe pass + full pass with keyframes)

  def __iter__(self):
    return iter((self.coordinates, self.marker_errors))

  @property
  def rms(self) -> jax.Array:
    """(T,) RMS over the markers with a target (NaN targets excluded)."""
    return jnp.sqrt(jnp.nanmean(self.marker_errors ** 2, axis=-1))

  @property
  def max(self) -> jax.Array:
    """(T,) largest marker error per frame."""
    return jnp.nanmax(self.marker_errors, axis=-1)


def solve_ik(skeleton: Skeleton, marker_positions, marker_weights, init=None, scales=None, *,
             marker_names: Sequence[str] | None = None, iters: int = 50, tol: float = 1e-10,
             damping: float = 1e-3, sequential: bool = False,
             hierarchical: bool | None = None, stage_iters: int = 5,
             keyframe_stride: int = 0) -> IKSolution:
  """Inverse kinematics of marker trajectories, batched over frames.

  Args:
    skeleton: from `banet_jax.skeleton.load_osim` (any model it loads, e.g. the
      ScaleTool's scaled model with `scales=None`).
    marker_positions: (T, M, 3) targets in metres, ground frame; NaN marks a
      missing marker in a frame (it then has no weight in that frame).
    marker_weights: (M,) weights w_i >= 0 (as OpenSim's IK task weights).
    init: optional (T, C) or (C,) starting coordinates (rad / m) in
      `skeleton.coordinate_names` order; None: segment registration per frame
      (see the module docstring). With `sequential`, only the first frame's
      start is used.
    scales: optional (B, 3) or (T, B, 3) body scale factors for the FK.
    marker_names: the model markers the M columns refer to, in order; None:
      all of `skeleton.marker_names` in order.
    iters: maximum Levenberg-Marquardt iterations of the full problem (after the
      coarse stages; per frame when sequential).
    tol: stop when no frame lowers its cost by more than tol * cost.
    damping: initial Levenberg-Marquardt damping lambda.
    sequential: solve frames in order, each from the previous solution.
    hierarchical: start with the coarse-to-fine schedule (see the module
      docstring); None: when `init` is None. With `sequential`, only frame 0.
    stage_iters: iteration cap of each coarse stage.
    keyframe_stride: k > 1 (with `init` None, not sequential): solve every k-th
      frame from scratch first, then every frame (batched, no coarse stages) from
      its nearest keyframe's solution. Fewer iterations on smooth motion; two
      compiled programs (keyframes, all frames) instead of one.

  Returns:
    IKSolution(coordinates (T, C), marker_errors (T, M), cost (T,), iterations)
    in the dtype of `marker_positions` (float64 needs `jax.enable_x64`; float32
    is enough for millimetre-level work). Rotational coordinates used only as
    plain rotation angles are returned shifted by 2 pi into (or nearest to) their
    range.
  """
  names = tuple(skeleton.marker_names) if marker_names is None else tuple(marker_names)
  index = tuple(skeleton.marker_index(n) for n in names)
  targets = jnp.asarray(marker_positions)
  if not jnp.issubdtype(targets.dtype, jnp.floating):
    targets = targets.astype(jnp.result_type(float))
  if targets.ndim != 3 or targets.shape[1:] != (len(names), 3):
    raise ValueError(f'marker_positions must have shape (T, {len(names)}, 3) for the '
                     f'{len(names)} markers, got {targets.shape}')
  num_frames = targets.shape[0]
  if num_frames < 1:
    raise ValueError('marker_positions holds no frames')
  weights = np.asarray(marker_weights, np.float64)
  if weights.shape != (len(names),):
    raise ValueError(f'marker_weights must have shape ({len(names)},), got {weights.shape}')
  if not np.all(np.isfinite(weights)) or np.any(weights < 0):
    raise ValueError('marker_weights must be finite and >= 0')
  if iters < 1:
    raise ValueError(f'iters must be >= 1, got {iters}')
  dtype = targets.dtype
  num_coordinates = skeleton.num_coordinates
  start = None
  if init is not None:
    start = jnp.asarray(init, dtype)
    if start.shape == (num_coordinates,):
      start = jnp.broadcast_to(start, (num_frames, num_coordinates))
    if start.shape != (num_frames, num_coordinates):
      raise ValueError(f'init must have shape ({num_frames}, {num_coordinates}) or '
                       f'({num_coordinates},), got {start.shape}')
  if scales is not None:
    scales = jnp.asarray(scales, dtype)
    if scales.shape == (skeleton.num_bodies, 3):
      scales = jnp.broadcast_to(scales, (num_frames, skeleton.num_bodies, 3))
    if scales.shape != (num_frames, skeleton.num_bodies, 3):
      raise ValueError(f'scales must have shape ({skeleton.num_bodies}, 3) or '
                       f'({num_frames}, {skeleton.num_bodies}, 3), got {scales.shape}')
  if stage_iters < 1:
    raise ValueError(f'stage_iters must be >= 1, got {stage_iters}')
  if keyframe_stride < 0:
    raise ValueError(f'keyframe_stride must be >= 0, got {keyframe_stride}')
  if hierarchical is None:
    hierarchical = init is None
  weights = jnp.asarray(weights, dtype)
  options = dict(iters=int(iters), tol=float(tol), damping=float(damping),
                 stage_iters=int(stage_iters))
  # One compiled program serves every skeleton of the same structure: `template` is
  # its normalised form (the same for every model scaled from one generic model), and
  # this one's numbers enter as traced arguments.
  template, ratios = _template_for(skeleton)
  params = _parameters(skeleton, index, ratios, dtype)
  if scales is None:  # always traced: one program with or without scales
    scales = jnp.ones((num_frames, skeleton.num_bodies, 3), dtype)
  key_iterations = 0
  if keyframe_stride > 1 and start is None and not sequential and num_frames > keyframe_stride:
    # Every keyframe_stride-th frame from scratch, then every frame from the solution
    # of its nearest keyframe.
    keys = np.arange(0, num_frames, keyframe_stride)
    key_start = _initial_coordinates(template, index, targets[keys], weights, scales[keys],
                                     params)
    key_q, _, _, key_iterations = _solve(
        template, index, targets[keys], weights, key_start, scales[keys], params,
        jnp.asarray(bool(hierarchical)), sequential=False, **options)
    nearest = np.minimum(np.round(np.arange(num_frames) / keyframe_stride).astype(int),
                         len(keys) - 1)
    start, hierarchical = key_q[nearest], False
  if start is None:  # a separate small program, so that _solve compiles once
    start = _initial_coordinates(template, index, targets, weights, scales, params)
  q, errors, cost, iterations = _solve(
      template, index, targets, weights, start, scales, params,
      jnp.asarray(bool(hierarchical)), sequential=bool(sequential), **options)
  return IKSolution(q, errors, cost, iterations + key_iterations)


def _masked_targets(targets, weights):
  """Missing (NaN) targets: zero weight in that frame and a 0 target (no NaN in sums).
  -> (present (T, M), weights (T, M), targets (T, M, 3))."""
  present = jnp.all(jnp.isfinite(targets), axis=-1)
  return (present, jnp.where(present, weights, 0.0),
          jnp.where(present[..., None], targets, 0.0))


@functools.partial(jax.jit, static_argnames=('skel', 'index'))
def _initial_coordinates(skel, index, targets, weights, scales, params):
  _, frame_weights, targets = _masked_targets(targets, weights)
  return _segment_initialisation(skel, index, targets, frame_weights, scales, params)


# ---- compiled programs shared by skeletons of one structure ---------------------------
#
# A subject model made by OpenSim's scaling differs from the generic model (and from
# every other subject's) only in numbers: joint frame offsets and the multipliers of
# scaled translation functions (both per-body scale factors times the generic values),
# marker positions (placed per subject), coordinate ranges and defaults. The programs
# are compiled for a template skeleton and take those numbers as traced arguments:
# marker offsets, ranges and defaults directly, joint offsets as per-body scale ratios
# to the template, fed to the FK's `scales`. Structure (what is compiled in): bodies,
# joints, axes, functions (their content, except the scaled multipliers), couplers,
# locked / clamped / dependent flags and which body each marker is on.
#
# The template is a function of the skeleton alone (`_canonical_joints`: its scaled
# numbers normalised per body and axis), never "the first skeleton seen": the template's
# offsets (compiled in) times the ratios differ from the model's own offsets in the last
# bits, which the solver amplifies (float32: up to ~2e-3 rad along flat directions), so
# a first-seen template made a model's IK depend on which models the process had solved
# before (two ODAH builds gave different labels, their workers having started with
# different subjects).

# Structure key + template numbers -> template skeleton (kept alive, so jit's cache
# keyed on it hits).
_TEMPLATES: dict[tuple, Skeleton] = {}
_RATIO_RTOL = 1e-9  # relative agreement of offsets with template offsets x ratios
_TEMPLATE_BITS = 32  # significant bits kept of a template's normalised numbers


class _Parameters(NamedTuple):
  """The traced numbers of one skeleton (C coordinates, n free, M markers, S stages)."""

  ratios: jax.Array  # (B, 3) joint offsets = the template's x ratios (per body and axis)
  marker_offsets: jax.Array  # (M, 3, 3) A with marker in its body = A @ s_body
  default: jax.Array  # (C,) default coordinates
  ranges: jax.Array  # (C, 2) coordinate ranges
  clamp_lo: jax.Array  # (n,) lower bounds of the free coordinates (-inf: not clamped)
  clamp_hi: jax.Array  # (n,)
  coordinate_masks: jax.Array  # (S+1, n) unknowns freed at each stage of the schedule
  marker_masks: jax.Array  # (S+1, M) markers fitted at each stage


def _parameters(skel: Skeleton, index: tuple, ratios: np.ndarray, dtype) -> _Parameters:
  free = _free_coordinates(skel)
  ranges = np.asarray(skel.coordinate_ranges, np.float64)
  clamped = np.asarray(skel.clamped)[free]
  coordinate_masks, marker_masks = _stage_masks(skel, index, free)
  return _Parameters(
      ratios=jnp.asarray(ratios, dtype),
      marker_offsets=jnp.asarray(np.asarray(skel.marker_offsets)[list(index)], dtype),
      default=jnp.asarray(skel.default_coordinates, dtype),
      ranges=jnp.asarray(ranges, dtype),
      clamp_lo=jnp.asarray(np.where(clamped, ranges[free, 0], -np.inf), dtype),
      clamp_hi=jnp.asarray(np.where(clamped, ranges[free, 1], np.inf), dtype),
      coordinate_masks=jnp.asarray(coordinate_masks, dtype),
      marker_masks=jnp.asarray(marker_masks, dtype))


def _value_key(value):
  """Hashable exact content of a field value (arrays by dtype, shape and bytes)."""
  if isinstance(value, np.ndarray):
    return (value.dtype.str, value.shape, value.tobytes())
  if isinstance(value, skel_functions.Function):
    return _function_key(value)
  if isinstance(value, (tuple, list)):
    return tuple(_value_key(v) for v in value)
  return value


def _function_key(function: skel_functions.Function, scaled: bool = False):
  """Content of a function; with `scaled`, a Multiplier's factor is left out (it is
  a per-body scale number; `_body_ratios` checks it)."""
  if isinstance(function, skel_functions.Multiplier) and scaled:
    return ('Multiplier', _function_key(function.inner))
  return (type(function).__name__,) + tuple(
      _value_key(getattr(function, f.name)) for f in dataclasses.fields(function))


def _scaled_translation(joint, motion) -> bool:
  """A translation whose function OpenSim multiplies by the parent body's scale."""
  return motion.scale_axis is not None and joint.parent_body >= 0


def _structure_key(skel: Skeleton) -> tuple:
  joints = []
  for joint in skel.joints:
    ground = joint.parent_body < 0
    joints.append((
        joint.name, joint.kind, joint.parent_body, joint.child_body,
        _value_key(np.asarray(joint.parent_rotation)), _value_key(np.asarray(joint.child_rotation)),
        # Offsets on ground do not scale: they are structure.
        _value_key(np.asarray(joint.parent_offset)) if ground else None,
        tuple((_value_key(m.axis), _function_key(m.function), m.coordinate)
              for m in joint.rotations),
        tuple((_value_key(m.axis), _function_key(m.function, _scaled_translation(joint, m)),
               m.coordinate, None if m.scale_axis is None else _value_key(m.scale_axis))
              for m in joint.translations)))
  couplers = tuple((c.dependent, c.independent, _function_key(c.function), c.scale, c.scale_body)
                   for c in skel.couplers)
  return (skel.coordinate_names, skel.coordinate_motion_types, _value_key(np.asarray(skel.locked)),
          _value_key(np.asarray(skel.clamped)), _value_key(np.asarray(skel.dependent)),
          skel.body_names, _value_key(np.asarray(skel.marker_bodies)), tuple(joints),
          skel.joint_order, couplers)


def _body_ratios(template: Skeleton, skel: Skeleton) -> np.ndarray | None:
  """(B, 3) r with every scaled number of `skel` = the template's times r of its body
  (offset matrices A: A_skel = A_template diag(r_body); scaled translation multipliers:
  m_skel = m_template (axis . r_parent)), or None when there is no such r."""
  # (body, template values (K, 3), skel values (K, 3)) of each offset column set.
  entries = []
  for tj, sj in zip(template.joints, skel.joints):
    if tj.parent_body >= 0:
      entries.append((tj.parent_body, np.asarray(tj.parent_offset), np.asarray(sj.parent_offset)))
    entries.append((tj.child_body, np.asarray(tj.child_offset), np.asarray(sj.child_offset)))
    # A multiplier along a body axis scales like an offset along it (e.g. the knee's
    # translation functions carry the femur's x / y / z factors).
    for tm, sm in zip(tj.translations, sj.translations):
      if (_scaled_translation(tj, tm) and isinstance(tm.function, skel_functions.Multiplier)
          and np.count_nonzero(tm.scale_axis) == 1):
        axis = (np.asarray(tm.scale_axis) != 0).astype(np.float64)[None]
        entries.append((tj.parent_body, tm.function.scale * axis, sm.function.scale * axis))
  ratios = np.ones((template.num_bodies, 3))
  for b in range(template.num_bodies):
    on_body = [(t, s) for body, t, s in entries if body == b]
    if not on_body:
      continue
    t = np.concatenate([t for t, _ in on_body])
    s = np.concatenate([s for _, s in on_body])
    pick = np.argmax(np.abs(t), axis=0)
    ref_t, ref_s = t[pick, np.arange(3)], s[pick, np.arange(3)]
    ratios[b] = np.where(ref_t != 0.0, ref_s / np.where(ref_t != 0.0, ref_t, 1.0), 1.0)
    if not np.allclose(s, t * ratios[b], rtol=_RATIO_RTOL, atol=1e-14):
      return None
  for tj, sj in zip(template.joints, skel.joints):
    for tm, sm in zip(tj.translations, sj.translations):
      if not _scaled_translation(tj, tm):
        continue
      r = ratios[tj.parent_body][np.asarray(tm.scale_axis) != 0]
      if not isinstance(tm.function, skel_functions.Multiplier):
        if not np.allclose(r, 1.0, rtol=0.0, atol=_RATIO_RTOL):
          return None  # the FK would scale this function (equal in both) by r
        continue
      if not np.allclose(r, r[0], rtol=_RATIO_RTOL):
        return None  # (a . (r u)) = r (a . u) needs one ratio along the axis
      inner_zero = tm.function.inner.is_constant and tm.function.inner.constant_value() == 0.0
      if not inner_zero and not np.isclose(sm.function.scale, tm.function.scale * r[0],
                                           rtol=_RATIO_RTOL, atol=0.0):
        return None
  return ratios


def _single_axis_multiplier(joint, motion) -> bool:
  """A scaled translation multiplier along one axis of the parent body: it scales like
  an offset along that axis (e.g. the knee's translation functions carry the femur's
  x / y / z factors)."""
  return (_scaled_translation(joint, motion)
          and isinstance(motion.function, skel_functions.Multiplier)
          and np.count_nonzero(motion.scale_axis) == 1)


def _round_significand(values):
  """values rounded to _TEMPLATE_BITS significant bits (0 stays 0, +-1 stays +-1)."""
  mantissa, exponent = np.frexp(np.asarray(values, np.float64))
  return np.ldexp(np.round(mantissa * 2.0 ** _TEMPLATE_BITS) / 2.0 ** _TEMPLATE_BITS, exponent)


def _canonical_joints(skel: Skeleton) -> tuple:
  """The joints of the template a skeleton's programs are compiled for (its other numbers,
  markers, ranges, defaults, reach the programs as arguments): `skel`'s, its scaled numbers
  -- joint offsets and single-axis scaled translation multipliers -- divided, per body
  and axis, by the largest magnitude among them there and rounded to _TEMPLATE_BITS
  significant bits. A body axis that scales another translation function (not a
  single-axis multiplier, e.g. a generic model's knee splines) keeps its numbers: the FK
  would scale that function by the ratio too.

  Models scaled from one generic model (per-body, per-axis factors) all get the same
  numbers (a model that falls on a rounding boundary gets a program of its own), and
  the template depends on `skel` alone, so a model's IK does not depend on what the
  process solved before. `_body_ratios(template, skel)` gives back the divisors.
  """
  size = np.zeros((skel.num_bodies, 3))
  keep = np.zeros((skel.num_bodies, 3), bool)

  def see(body, values):
    size[body] = np.maximum(size[body], np.abs(np.asarray(values, np.float64)).max(axis=0))

  for joint in skel.joints:
    if joint.parent_body >= 0:
      see(joint.parent_body, joint.parent_offset)
    see(joint.child_body, joint.child_offset)
    for motion in joint.translations:
      if _single_axis_multiplier(joint, motion):
        see(joint.parent_body, motion.function.scale * (np.asarray(motion.scale_axis) != 0)[None])
      elif _scaled_translation(joint, motion):
        keep[joint.parent_body] |= np.asarray(motion.scale_axis) != 0
  normalise = (size > 0.0) & ~keep
  divisor = np.where(normalise, size, 1.0)

  def canonical(values, body):  # values (..., 3) scaling with the body's factors
    return np.where(normalise[body], _round_significand(values / divisor[body]), values)

  joints = []
  for joint in skel.joints:
    translations = []
    for motion in joint.translations:
      if _single_axis_multiplier(joint, motion):
        axis = np.asarray(motion.scale_axis) != 0
        scale = float(canonical(motion.function.scale * axis, joint.parent_body)[axis][0])
        motion = dataclasses.replace(motion, function=dataclasses.replace(motion.function,
                                                                          scale=scale))
      translations.append(motion)
    parent_offset = joint.parent_offset
    if joint.parent_body >= 0:  # (offsets on ground do not scale)
      parent_offset = canonical(parent_offset, joint.parent_body)
    joints.append(dataclasses.replace(
        joint, parent_offset=parent_offset,
        child_offset=canonical(joint.child_offset, joint.child_body),
        translations=tuple(translations)))
  return tuple(joints)


def _numbers_key(joints) -> tuple:
  """Exact joint offsets and translation functions (the numbers ratios stand for)."""
  return tuple(_value_key(np.asarray(a)) for j in joints
               for a in (j.parent_offset, j.child_offset)) + tuple(
      _value_key(m.function) for j in joints for m in j.translations)


def _template_for(skel: Skeleton) -> tuple[Skeleton, np.ndarray]:
  """(template skeleton whose compiled programs serve `skel`, (B, 3) scale ratios); both
  functions of `skel` alone (see `_canonical_joints`)."""
  key = _structure_key(skel)
  joints = _canonical_joints(skel)
  canonical_key = key + ('canonical', _numbers_key(joints))
  template = _TEMPLATES.get(canonical_key)
  if template is None:
    template = _TEMPLATES[canonical_key] = skel.derive(joints=joints)
  ratios = _body_ratios(template, skel)
  if ratios is None:
    # Defensive (the canonical template reproduces its model): numbers no per-body ratio
    # explains get a program of their own, keyed by all of them (so reloading the same
    # model still hits the cache).
    template = _TEMPLATES.setdefault(key + ('own', _numbers_key(skel.joints)), skel)
    ratios = np.ones((skel.num_bodies, 3))
  return template, ratios


# ---- Jacobian of the markers ----------------------------------------------------------


def _derivative(function: skel_functions.Function, x):
  """f'(x) elementwise (forward mode through the JAX function)."""
  if isinstance(function, skel_functions.Linear):
    return jnp.full_like(x, function.slope)
  return jax.jvp(function, (x,), (jnp.ones_like(x),))[1]


def _subtree_bodies(skel: Skeleton) -> list[set[int]]:
  """For each joint, the bodies moved by it (its child body and descendants)."""
  children: dict[int, list[int]] = {}
  for joint in skel.joints:
    children.setdefault(joint.parent_body, []).append(joint.child_body)
  out = []
  for joint in skel.joints:
    bodies, stack = set(), [joint.child_body]
    while stack:
      b = stack.pop()
      bodies.add(b)
      stack.extend(children.get(b, []))
    out.append(bodies)
  return out


def marker_jacobian(skel: Skeleton, q, scales=None, index: Sequence[int] | None = None,
                    fk=None, markers=None) -> jax.Array:
  """d markers / d q: (T, M, 3, C), from the joint axes of the posed model.

  For a rotation of joint j about axis a_k (the k-th of its body-fixed sequence)
  by f_k(q_c), every point x moved by the joint changes by
  f_k'(q_c) * omega_k x (x - o_j), with omega_k = R_F R_1 ... R_{k-1} a_k in
  ground and o_j the joint's child-frame origin; a translation f_k(q_c) s_k a_k
  moves them by f_k'(q_c) s_k R_F a_k (s_k: OpenSim's scaling of the function).
  Coupler-dependent coordinates get their own columns (chain them with
  `coordinate_jacobian`).

  Args:
    skel: the skeleton.
    q: (T, C) coordinates (dependent coordinates already set).
    scales: None or (T, B, 3).
    index: marker indices (into skel.marker_names) of the M rows; None: all.
    fk: optional `forward_kinematics(skel, q, scales)` already computed.
    markers: optional (T, M, 3) positions of the M markers (default: the FK's); the
      solver passes its own (markers given as traced offsets).
  """
  q = jnp.asarray(q)
  dtype = q.dtype
  num_frames = q.shape[0]
  index = tuple(range(len(skel.marker_names))) if index is None else tuple(index)
  if fk is None:
    fk = forward_kinematics(skel, q, scales)
  if markers is None:
    markers = fk.markers[:, jnp.asarray(index)]  # (T, M, 3)
  marker_bodies = np.asarray(skel.marker_bodies)[list(index)]
  # Columns are summed densely (a 0/1 mask selects the moved markers): a chain of
  # scatters into one (T, M, 3, C) array would copy it once per joint axis.
  columns: dict[int, jax.Array] = {}

  def add(coordinate, column):
    columns[coordinate] = column if coordinate not in columns else columns[coordinate] + column

  for j, (joint, bodies) in enumerate(zip(skel.joints, _subtree_bodies(skel))):
    moved = np.isin(marker_bodies, list(bodies))
    if not moved.any():
      continue
    mask = jnp.asarray(moved, dtype)[None, :, None]  # (1, M, 1)
    parent_rotation = jnp.asarray(joint.parent_rotation, dtype)
    if joint.parent_body >= 0:
      r_gf = fk.body_rotations[:, joint.parent_body] @ parent_rotation  # (T, 3, 3)
    else:
      r_gf = jnp.broadcast_to(parent_rotation, (num_frames, 3, 3))
    lever = (markers - fk.joint_centers[:, j, None, :]) * mask  # (T, M, 3)
    r_acc = r_gf
    for motion in joint.rotations:
      axis = jnp.asarray(motion.axis, dtype)
      if motion.function.is_constant:
        angle = jnp.full((num_frames,), motion.function.constant_value(), dtype)
      else:
        value = q[:, motion.coordinate]
        angle = motion.function(value)
        omega = r_acc @ axis  # (T, 3)
        d = _derivative(motion.function, value)
        add(motion.coordinate, d[:, None, None] * jnp.cross(omega[:, None, :], lever))
      r_acc = r_acc @ _axis_rotation(axis, angle)
    for motion in joint.translations:
      if motion.function.is_constant:
        continue
      value = q[:, motion.coordinate]
      d = _derivative(motion.function, value)
      if motion.scale_axis is not None and scales is not None and joint.parent_body >= 0:
        d = d * (scales[:, joint.parent_body] @ jnp.asarray(motion.scale_axis, dtype))
      v = r_gf @ jnp.asarray(motion.axis, dtype)  # (T, 3)
      add(motion.coordinate, (d[:, None] * v)[:, None, :] * mask)
  zero = jnp.zeros(markers.shape, dtype)
  return jnp.stack([columns.get(c, zero) for c in range(skel.num_coordinates)], axis=-1)


def coordinate_jacobian(skel: Skeleton, q, free: np.ndarray, scales=None) -> jax.Array:
  """d q / d x: (T, C, n) for q = coordinates with x (T, n) as the `free` ones and
  the couplers applied in order (locked coordinates are constant)."""
  q = jnp.asarray(q)
  num_frames = q.shape[0]
  rows = jnp.zeros((num_frames, skel.num_coordinates, len(free)), q.dtype)
  rows = rows.at[:, free, np.arange(len(free))].set(1.0)
  for c in skel.couplers:
    d = c.scale * _derivative(c.function, q[:, c.independent])
    if scales is not None and c.scale_body >= 0:
      d = d * scales[:, c.scale_body, 0]
    rows = rows.at[:, c.dependent].set(d[:, None] * rows[:, c.independent])
  return rows


def _axis_rotation(axis, angle):
  """(T, 3, 3) rotations by angle (T,) about a constant unit axis (3,)."""
  k = jnp.array([[0.0, -axis[2], axis[1]], [axis[2], 0.0, -axis[0]],
                 [-axis[1], axis[0], 0.0]], angle.dtype)
  s, c = jnp.sin(angle)[:, None, None], jnp.cos(angle)[:, None, None]
  return jnp.eye(3, dtype=angle.dtype) + s * k + (1.0 - c) * (k @ k)


# ---- the solver ---------------------------------------------------------------------

STAGE_TOL = 1e-3  # relative cost gain below which a coarse stage is finished
DAMPING_FLOOR = 1e-6  # smallest damping scale, relative to the largest diag(J'J)
MAX_STEP = 0.5  # largest change of any unknown in one iteration (rad or m)
CENTRE_TOLERANCE = 5e-3  # m: a marker this close to a joint centre does not see its rotation


def _free_coordinates(skel: Skeleton) -> np.ndarray:
  return np.flatnonzero(~(np.asarray(skel.dependent) | np.asarray(skel.locked)))


def _marker_positions(fk, marker_bodies: np.ndarray, offsets, scales):
  """(T, M, 3) ground positions of markers offsets[m] @ s_body on marker_bodies[m]
  (-1: ground, unscaled), from the FK's body poses; offsets (M, 3, 3), scales (T, B, 3)."""
  body = np.maximum(marker_bodies, 0)
  on_ground = jnp.asarray(marker_bodies < 0)[None, :, None]
  s_body = jnp.where(on_ground, 1.0, scales[:, body])  # (T, M, 3)
  local = jnp.einsum('mij,tmj->tmi', offsets, s_body)
  world = fk.body_positions[:, body] + jnp.einsum('tmij,tmj->tmi', fk.body_rotations[:, body],
                                                  local)
  return jnp.where(on_ground, local, world)


class _Problem(NamedTuple):
  skel: Skeleton
  index: tuple
  free: np.ndarray
  params: _Parameters

  def full(self, x, scales):
    """(T, n) unknowns -> (T, C) coordinates with locked and dependent ones filled."""
    default = self.params.default
    q = jnp.broadcast_to(default, x.shape[:-1] + default.shape)
    q = q.at[..., self.free].set(x)
    return apply_couplers(self.skel, q, scales)

  def project(self, x):
    return jnp.clip(x, self.params.clamp_lo, self.params.clamp_hi)

  def evaluate(self, x, targets, scales):
    """Marker differences (T, M, 3) and d(differences)/dx (T, M*3, n) at x; scales
    (T, B, 3) are the caller's (the template's joint offsets get the ratios too)."""
    q = self.full(x, scales)
    fk_scales = scales * self.params.ratios
    fk = forward_kinematics(self.skel, q, fk_scales)
    bodies = np.asarray(self.skel.marker_bodies)[list(self.index)]
    markers = _marker_positions(fk, bodies, self.params.marker_offsets, scales)
    diff = markers - targets
    jac_q = marker_jacobian(self.skel, q, fk_scales, self.index, fk, markers)  # (T, M, 3, C)
    # Chain rule through q(x): identity on the free coordinates, plus each dependent
    # coordinate's column times its row of dq/dx (only the few couplers).
    jac = jac_q[..., self.free]
    dependent = np.flatnonzero(np.asarray(self.skel.dependent))
    if dependent.size:
      dq_dx = coordinate_jacobian(self.skel, q, self.free, scales)[:, dependent]  # (T, D, n)
      jac = jac + jnp.einsum('tmkd,tdn->tmkn', jac_q[..., dependent], dq_dx)
    return diff, jac.reshape(x.shape[0], -1, x.shape[-1])


def _body_depths(skel: Skeleton) -> np.ndarray:
  """(B,) number of joints between ground and each body, minus one (root body: 0)."""
  depth = np.zeros(skel.num_bodies, np.int32)
  for j in skel.joint_order:
    joint = skel.joints[j]
    depth[joint.child_body] = 0 if joint.parent_body < 0 else depth[joint.parent_body] + 1
  return depth


def _stage_masks(skel: Skeleton, index, free: np.ndarray):
  """Masks of the coarse-to-fine schedule: (S+1, n) active unknowns, (S+1, M) markers.

  A joint's coordinates belong to stage k = the smallest depth of a body carrying a
  marker that they move (markers at the joint's own centre on its child body do not
  count: rotations leave them in place). Stage k solves only its own coordinates,
  the earlier ones held, from the markers on bodies of depth <= k; holding them
  keeps a distal error from being absorbed by a proximal joint (e.g. a shoulder near
  gimbal lock sliding to the other Euler branch). The last row is the full problem.
  """
  depth = _body_depths(skel)
  marker_bodies = np.asarray(skel.marker_bodies)[list(index)]
  offsets = np.asarray(skel.marker_offsets)[list(index)]
  marker_depth = np.where(marker_bodies >= 0, depth[np.maximum(marker_bodies, 0)], 0)
  big = np.iinfo(np.int32).max
  coordinate_stage = np.full(skel.num_coordinates, big, np.int64)
  for joint, bodies in zip(skel.joints, _subtree_bodies(skel)):
    moved = np.isin(marker_bodies, list(bodies))
    # (Placed markers sit near, not exactly at, the joint centre: a tolerance.)
    at_centre = (marker_bodies == joint.child_body) & (np.linalg.norm(
        offsets.sum(-1) - joint.child_offset.sum(-1), axis=-1) < CENTRE_TOLERANCE)
    for motions, observing in ((joint.rotations, moved & ~at_centre), (joint.translations, moved)):
      stage = int(marker_depth[observing].min()) if observing.any() else big
      for m in motions:
        if m.coordinate >= 0:
          coordinate_stage[m.coordinate] = min(coordinate_stage[m.coordinate], stage)
  stages = int(depth.max()) + 1 if skel.num_bodies else 1
  levels = np.arange(stages)[:, None]
  coordinate_masks = np.concatenate([coordinate_stage[free][None, :] == levels,
                                     np.ones((1, len(free)), bool)])
  marker_masks = np.concatenate([marker_depth[None, :] <= levels,
                                 np.ones((1, len(index)), bool)])
  return coordinate_masks, marker_masks


@functools.partial(jax.jit, static_argnames=('skel', 'index', 'iters', 'tol', 'damping',
                                             'sequential', 'stage_iters'))
def _solve(skel, index, targets, weights, start, scales, params, hierarchical, *, iters, tol,
           damping, sequential, stage_iters):
  free = _free_coordinates(skel)
  present, frame_weights, targets = _masked_targets(targets, weights)
  problem = _Problem(skel, index, free, params)
  schedule = _Schedule(params.coordinate_masks, params.marker_masks, stage_iters)
  x0 = start[:, free]
  lm = functools.partial(_levenberg_marquardt, problem, schedule=schedule, iters=iters,
                         tol=tol, damping=damping)
  if not sequential:
    x, diff, iterations = lm(x0, targets, frame_weights, scales, hierarchical)
  else:
    # Frame 0 from the start (coarse-to-fine if asked), every later frame from the
    # previous solution (no schedule needed that close to the answer).
    def step(carry, frame):
      x_prev, first = carry
      target, w, s = frame
      x, diff, its = lm(x_prev[None], target[None], w[None], s[None], hierarchical & first)
      return (x[0], jnp.asarray(False)), (x[0], diff[0], its)
    _, (x, diff, its) = jax.lax.scan(step, (x0[0], jnp.asarray(True)),
                                     (targets, frame_weights, scales))
    iterations = its.sum()
  q = problem.full(_wrap_free(skel, free, x, params.ranges), scales)
  errors = jnp.where(present, jnp.linalg.norm(diff, axis=-1), jnp.nan)
  cost = jnp.sum(frame_weights * jnp.sum(diff ** 2, axis=-1), axis=-1)
  return q, errors, cost, iterations


class _Schedule(NamedTuple):
  coordinate_masks: jax.Array  # (S+1, n)
  marker_masks: jax.Array  # (S+1, M)
  stage_iters: int  # iterations per coarse stage


def _levenberg_marquardt(problem: _Problem, x0, targets, weights, scales, hierarchical, *,
                         schedule: _Schedule, iters, tol, damping):
  """Batched LM over the leading (frame) axis of x0 (T, n) -> (x, marker differences).

  The loop evaluates the model once per iteration, at the candidate point (the
  first iteration at x0), so the compiled program holds a single FK. With
  `hierarchical` (a traced bool) it first runs the coarse stages of `schedule`
  (each until converged or `stage_iters` iterations), then the full problem for at
  most `iters` iterations."""
  dtype = x0.dtype
  num_frames, n = x0.shape
  eye = jnp.eye(n, dtype=dtype)
  x0 = problem.project(x0)
  last = schedule.coordinate_masks.shape[0] - 1

  def stage_cost(diff, stage):
    w = weights * schedule.marker_masks[stage]
    return jnp.sum(w * jnp.sum(diff ** 2, axis=-1), axis=-1)

  def body(state):
    x, diff, jac, cost, lam, it, stage, stage_it, _ = state
    sqrt_w = jnp.sqrt(weights * schedule.marker_masks[stage])[..., None]  # (T, M, 1)
    r = (sqrt_w * diff).reshape(num_frames, -1)
    jw = (sqrt_w[..., None] * jac.reshape(num_frames, -1, 3, n)).reshape(num_frames, -1, n)
    jtj = jnp.einsum('tki,tkj->tij', jw, jw)
    jtr = jnp.einsum('tki,tk->ti', jw, r)
    # Active set of the bounds: an unknown on a bound that the descent direction
    # (-J'r) pushes outwards is held there for this step, and the others are solved
    # without it (clipping a full step instead would move them as if it went on).
    held = (((x <= problem.params.clamp_lo) & (jtr > 0.0))
            | ((x >= problem.params.clamp_hi) & (jtr < 0.0)))
    active = schedule.coordinate_masks[stage] * (1.0 - held.astype(dtype))  # (T, n)
    # Marquardt's scaling by diag(J'J), floored at DAMPING_FLOOR of its largest entry
    # so that nearly unobserved unknowns are damped too.
    diag = jnp.diagonal(jtj, axis1=-2, axis2=-1) * active
    diag = jnp.maximum(diag, DAMPING_FLOOR * jnp.max(diag, axis=-1, keepdims=True) + 1e-30)
    system = jtj + lam[:, None, None] * (diag[:, :, None] * eye)
    # Inactive unknowns: identity rows and columns, zero right-hand side (dx = 0).
    outer = active[:, :, None] * active[:, None, :]
    system = system * outer + (1.0 - active)[:, :, None] * eye
    dx = -jnp.linalg.solve(system, (active * jtr)[..., None])[..., 0]
    # A trust region in coordinate units: no step moves an unknown by more than
    # MAX_STEP (rad or m); it only binds far from the solution.
    dx = dx * jnp.minimum(1.0, MAX_STEP / jnp.maximum(jnp.max(jnp.abs(dx), axis=-1,
                                                              keepdims=True), 1e-30))
    first = it == 0
    x_new = jnp.where(first, x, problem.project(x + dx))
    diff_new, jac_new = problem.evaluate(x_new, targets, scales)
    cost_new = stage_cost(diff_new, stage)
    accept = jnp.isfinite(cost_new) & (first | (cost_new < cost))
    gain = jnp.where(accept & ~first, cost - cost_new, 0.0)
    x = jnp.where(accept[:, None], x_new, x)
    diff = jnp.where(accept[:, None, None], diff_new, diff)
    jac = jnp.where(accept[:, None, None], jac_new, jac)
    cost = jnp.where(accept, cost_new, cost)
    lam = jnp.where(first, lam, jnp.where(accept, jnp.maximum(lam / 3.0, 1e-12),
                                          jnp.minimum(lam * 10.0, 1e12)))
    # Go on while some frame still gains more than tol (relative; the coarse stages
    # only need STAGE_TOL). A rejected step counts as progress while the linear
    # model predicts a decrease above that (the damping grows, the step shrinks).
    rel_tol = jnp.where(stage < last, STAGE_TOL, tol)
    predicted = -(2.0 * jnp.sum(jtr * dx, axis=-1)
                  + jnp.einsum('ti,tij,tj->t', dx, jtj, dx))
    improving = first | jnp.any(jnp.where(accept, gain, predicted) > rel_tol * cost)
    stage_it = stage_it + 1
    advance = (stage < last) & ~first & (~improving | (stage_it >= schedule.stage_iters))
    stage = jnp.where(advance, stage + 1, stage)
    stage_it = jnp.where(advance, 0, stage_it)
    lam = jnp.where(advance, damping, lam)
    cost = jnp.where(advance, stage_cost(diff, stage), cost)
    return x, diff, jac, cost, lam, it + 1, stage, stage_it, improving | advance

  def cond(state):
    *_, stage, stage_it, going = state
    return going & ((stage < last) | (stage_it < iters + 1))

  state = (x0, jnp.zeros(targets.shape, dtype),
           jnp.zeros((num_frames, targets.shape[1] * 3, n), dtype),
           jnp.full((num_frames,), jnp.inf, dtype), jnp.full((num_frames,), damping, dtype),
           jnp.asarray(0), jnp.where(hierarchical, 0, last), jnp.asarray(0), jnp.asarray(True))
  x, diff, _, _, _, iterations, *_ = jax.lax.while_loop(cond, body, state)
  return x, diff, iterations - 1  # the first pass only evaluates x0


# ---- starting point: rigid registration of segments ----------------------------------


def _pure_rotation_coordinates(skel: Skeleton) -> np.ndarray:
  """(C,) bool: coordinates used only as identity-function rotation angles (so q and
  q + 2 pi give the same pose) and not driving a coupler."""
  ok = np.zeros(skel.num_coordinates, bool)
  bad = np.zeros(skel.num_coordinates, bool)
  for joint in skel.joints:
    for m in joint.rotations:
      if m.coordinate >= 0:
        if isinstance(m.function, skel_functions.Linear) and m.function.is_identity:
          ok[m.coordinate] = True
        else:
          bad[m.coordinate] = True
    for m in joint.translations:
      if m.coordinate >= 0:
        bad[m.coordinate] = True
  for c in skel.couplers:
    bad[c.independent] = bad[c.dependent] = True
  return ok & ~bad


def _wrap_to_range(angle, lo, hi):
  """The 2 pi shift of `angle` nearest the middle of [lo, hi] (inside it if any is)."""
  mid = 0.5 * (lo + hi)
  return angle + 2.0 * jnp.pi * jnp.round((mid - angle) / (2.0 * jnp.pi))


def _wrap_free(skel: Skeleton, free: np.ndarray, x, ranges):
  wrap = _pure_rotation_coordinates(skel)[free] & ~np.asarray(skel.clamped)[free]
  if not wrap.any():
    return x
  wrapped = _wrap_to_range(x, ranges[free, 0], ranges[free, 1])
  return jnp.where(jnp.asarray(wrap), wrapped, x)


def _segment_initialisation(skel: Skeleton, index, targets, weights, scales,
                            params: _Parameters):
  """(T, C) starting coordinates: defaults, except

  * joints whose rotations are three identity functions about orthogonal axes (the
    root, hips, lumbar, shoulders of the project model) get the Euler angles of the
    relative rotation between rigid (weighted Kabsch) fits of their parent and child
    bodies' markers (bodies with >= 3 weighted markers; ground for the root), the
    Euler branch chosen to respect the coordinate ranges;
  * the root joint's identity translations come from the root body's fit.
  """
  num_frames = targets.shape[0]
  dtype = targets.dtype
  q = jnp.broadcast_to(params.default, (num_frames,) + params.default.shape)
  ranges = params.ranges
  marker_bodies = np.asarray(skel.marker_bodies)[list(index)]
  poses: dict[int, tuple] = {}

  def body_pose(b):
    if b in poses:
      return poses[b]
    on_body = np.flatnonzero(marker_bodies == b)
    if on_body.size < 3:
      poses[b] = None
      return None
    s_body = scales[:, b]
    local = jnp.einsum('mij,tj->tmi', params.marker_offsets[on_body], s_body)
    w = weights[:, on_body]
    rotation, position = _weighted_kabsch(local, targets[:, on_body], w)
    poses[b] = (rotation, position, jnp.sum(w > 0, axis=-1) >= 3, s_body)
    return poses[b]

  for joint in skel.joints:
    rot_axes, rot_coords = _identity_axes(joint.rotations)
    if rot_axes is None or len(rot_coords) != 3:
      continue
    child = body_pose(joint.child_body)
    if child is None:
      continue
    r_child, p_child, ok, s_child = child
    r_pf = jnp.asarray(joint.parent_rotation, dtype)
    r_cm = jnp.asarray(joint.child_rotation, dtype)
    if joint.parent_body >= 0:
      parent = body_pose(joint.parent_body)
      if parent is None:
        continue
      r_parent, _, ok_parent, _ = parent
      ok = ok & ok_parent
      r_gf = r_parent @ r_pf
    else:
      r_gf = jnp.broadcast_to(r_pf, (num_frames, 3, 3))
    r_fm = jnp.swapaxes(r_gf, -1, -2) @ r_child @ r_cm
    angles = _euler_about_axes(r_fm, rot_axes, ranges[np.asarray(rot_coords)])
    update = q.at[:, list(rot_coords)].set(angles)
    trans_axes, trans_coords = _identity_axes(joint.translations)
    if joint.parent_body < 0 and trans_axes and trans_coords:
      parent_origin = jnp.asarray(joint.parent_offset.sum(axis=1), dtype)  # ground: s = 1
      child_origin = jnp.einsum('ij,tj->ti', jnp.asarray(joint.child_offset, dtype),
                                s_child * params.ratios[joint.child_body])
      p_fm = jnp.einsum('ij,tj->ti', r_pf.T, p_child - parent_origin
                        + jnp.einsum('tij,tj->ti', r_child, child_origin))
      update = update.at[:, list(trans_coords)].set(
          p_fm @ jnp.asarray(np.stack(trans_axes, 1), dtype))
    q = jnp.where(ok[:, None], update, q)
  return q


def _identity_axes(motions):
  """(axes, coordinates) when every motion is an identity function of its own
  coordinate along mutually orthogonal axes, else (None, None)."""
  axes, coords = [], []
  for m in motions:
    f = m.function
    if not (isinstance(f, skel_functions.Linear) and f.is_identity and m.coordinate >= 0):
      return None, None
    axes.append(np.asarray(m.axis, np.float64))
    coords.append(int(m.coordinate))
  for i in range(len(axes)):
    for j in range(i + 1, len(axes)):
      if abs(axes[i] @ axes[j]) > 1e-9:
        return None, None
  return axes, tuple(coords)


def _weighted_kabsch(local, points, w):
  """Rigid transforms (R (T,3,3), p (T,3)) with points ~ R @ local + p, weighted."""
  w_sum = jnp.maximum(w.sum(-1, keepdims=True), jnp.finfo(local.dtype).tiny)
  c_local = (w[..., None] * local).sum(-2) / w_sum
  c_points = (w[..., None] * points).sum(-2) / w_sum
  cov = jnp.einsum('tk,tki,tkj->tij', w, points - c_points[:, None], local - c_local[:, None])
  u, _, vt = jnp.linalg.svd(cov)
  d = jnp.sign(jnp.linalg.det(u @ vt))
  d = jnp.where(d == 0, 1.0, d)
  fix = jnp.ones_like(c_local).at[:, 2].set(d)
  rotation = (u * fix[:, None, :]) @ vt
  position = c_points - jnp.einsum('tij,tj->ti', rotation, c_local)
  return rotation, position


def _euler_about_axes(rotation, axes, ranges):
  """Angles (T, 3) of the body-fixed sequence R = R(a1, t1) R(a2, t2) R(a3, t3) for
  orthonormal axes a1, a2, a3: of the two solutions (each angle shifted by 2 pi
  towards its range), the one that violates the ranges (3, 2) least."""
  basis = np.stack(axes, axis=1)  # columns a1, a2, a3
  sign3 = 1.0
  if np.linalg.det(basis) < 0:  # make it a rotation: R(-a3, t) = R(a3, -t)
    basis[:, 2] *= -1.0
    sign3 = -1.0
  b = jnp.asarray(basis, rotation.dtype)
  r = b.T @ rotation @ b  # = Rx(t1) Ry(t2) Rz(sign3 t3)
  t2 = jnp.arcsin(jnp.clip(r[:, 0, 2], -1.0, 1.0))
  t1 = jnp.arctan2(-r[:, 1, 2], r[:, 2, 2])
  t3 = jnp.arctan2(-r[:, 0, 1], r[:, 0, 0])
  first = jnp.stack([t1, t2, sign3 * t3], axis=-1)
  second = jnp.stack([t1 + jnp.pi, jnp.pi - t2, sign3 * (t3 + jnp.pi)], axis=-1)
  lo = jnp.asarray(ranges[:, 0], rotation.dtype)
  hi = jnp.asarray(ranges[:, 1], rotation.dtype)

  def fit(angles):
    angles = _wrap_to_range(angles, lo, hi)
    violation = jnp.sum(jax.nn.relu(lo - angles) + jax.nn.relu(angles - hi), axis=-1)
    return angles, violation

  a1, v1 = fit(first)
  a2, v2 = fit(second)
  return jnp.where((v2 < v1)[:, None], a2, a1)
