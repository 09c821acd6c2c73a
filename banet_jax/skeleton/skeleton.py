"""The immutable description of an OpenSim model's kinematic tree.

A `Skeleton` holds only numpy arrays, tuples and the small function objects of
`functions.py`, with its arrays read-only. Its identity is the content of the file
it was parsed from (`content_hash`, a sha256): two skeletons loaded from identical
bytes are equal and hash alike, wherever the files lie. It is registered as a
pytree with no leaves, so it can be closed over, passed as an argument to a
`jax.jit`-ed function, or marked static, and jit (like every cache keyed on a
skeleton) compiles once per model content, not once per loaded object.
`osim_parser.load_osim` is the one constructor; `Skeleton.derive` makes a changed
copy with its own identity.

Geometry convention used throughout (OpenSim's): a fixed point `p` on a body,
given in that body's frame, scales with the body's scale factors `s` (3,). Every
fixed point (offset-frame origin, marker, mass centre) is stored as a 3x3 matrix
`A` with `p(s) = A @ s`, which folds OpenSim's element-wise scaling of each
offset in its own parent frame into one linear map.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os

import jax
import numpy as np

from banet_jax.skeleton import functions as fn


@dataclasses.dataclass(frozen=True, eq=False)
class AxisMotion:
  """One rotation or translation of a joint: `function(q[coordinate])` along `axis`.

  `coordinate` is an index into `Skeleton.coordinate_names`, or -1 when the
  function takes no coordinate (a Constant).
  """

  axis: np.ndarray  # (3,) unit axis in the joint's parent frame F (rotations: in the
  # frame rotated by the previous rotations, i.e. a body-fixed sequence)
  function: fn.Function
  coordinate: int
  scale_axis: np.ndarray | None = None  # (3,) translations only: OpenSim scales the
  # function by dot(scale_axis, parent-body scale factors); None: never scaled
  # (identity LinearFunction axes are plain degrees of freedom).


@dataclasses.dataclass(frozen=True, eq=False)
class JointSpec:
  """A joint as OpenSim/Simbody evaluates it.

  X_FM (child frame M in parent frame F) = rotation `prod_k R(axis_k, f_k(q))`
  (body-fixed sequence) and translation `sum_i f_i(q) axis_i` expressed in F.
  """

  name: str
  kind: str  # the OpenSim class name, e.g. 'CustomJoint'
  parent_body: int  # index into body_names, -1 for ground
  child_body: int
  parent_rotation: np.ndarray  # (3, 3) F in the parent body
  parent_offset: np.ndarray  # (3, 3) A with origin of F = A @ s_parent
  child_rotation: np.ndarray  # (3, 3) M in the child body
  child_offset: np.ndarray  # (3, 3) A with origin of M = A @ s_child
  rotations: tuple[AxisMotion, ...]
  translations: tuple[AxisMotion, ...]


@dataclasses.dataclass(frozen=True, eq=False)
class Coupler:
  """CoordinateCouplerConstraint: q[dependent] = scale * function(q[independent])."""

  name: str
  dependent: int
  independent: int
  function: fn.Function
  scale: float
  # For a translational dependent coordinate OpenSim multiplies the function by the
  # (uniform) scale factor of this body; -1: not scaled.
  scale_body: int = -1


@dataclasses.dataclass(frozen=True, eq=False)
class Skeleton:
  """An OpenSim model's kinematics, parsed by `load_osim`.

  Equality and hash are those of `content_hash` (see the module docstring).

  Attributes (C coordinates, B bodies without ground, J joints, M markers):
    source: the file it was loaded from.
    content_hash: sha256 (hex) of that file's bytes; for a `derive`d copy, of the
      parent's hash and the changes.
    coordinate_names: (C,) in the model's order (joints in file order, each
      joint's coordinates in its listed order), the order of `q`.
    coordinate_ranges: (C, 2) float64 [min, max] in rad or m.
    default_coordinates: (C,) float64.
    coordinate_motion_types: (C,) 'rotational' | 'translational' | 'coupled',
      following OpenSim's Coordinate::MotionType rules.
    locked: (C,) bool, coordinates locked in the file.
    clamped: (C,) bool.
    dependent: (C,) bool, dependent coordinate of an enforced coupler.
    body_names: (B,) in file order; `scales` and per-body outputs use it.
    body_mass_centers: (B, 3) unscaled mass centres in the body frames.
    joint_names: (J,) in file order.
    marker_names: (M,) in file order.
    marker_bodies: (M,) body index of each marker, -1 for ground.
    marker_offsets: (M, 3, 3) marker in its body = marker_offsets[m] @ s_body.
    joints: (J,) JointSpec in file order.
    joint_order: (J,) indices into `joints`, parents before children.
    couplers: enforced couplers in evaluation order (independents first).
  """

  source: str
  content_hash: str
  model_name: str
  coordinate_names: tuple[str, ...]
  coordinate_ranges: np.ndarray
  default_coordinates: np.ndarray
  coordinate_motion_types: tuple[str, ...]
  locked: np.ndarray
  clamped: np.ndarray
  dependent: np.ndarray
  body_names: tuple[str, ...]
  body_mass_centers: np.ndarray
  joint_names: tuple[str, ...]
  marker_names: tuple[str, ...]
  marker_bodies: np.ndarray
  marker_offsets: np.ndarray
  joints: tuple[JointSpec, ...]
  joint_order: tuple[int, ...]
  couplers: tuple[Coupler, ...]

  def __post_init__(self):
    for f in dataclasses.fields(self):
      value = getattr(self, f.name)
      if isinstance(value, np.ndarray):
        value.flags.writeable = False  # shared by every holder of this content

  def __eq__(self, other) -> bool:
    if not isinstance(other, Skeleton):
      return NotImplemented
    return self.content_hash == other.content_hash

  def __hash__(self) -> int:
    return hash(self.content_hash)

  def derive(self, **changes) -> Skeleton:
    """A copy with some attributes replaced (e.g. `clamped=...`) and its own identity.

    `dataclasses.replace` would keep this skeleton's `content_hash`, and with it every
    compiled function and cache entry of the original: use this instead.
    """
    changes = {k: np.array(v) if isinstance(v, np.ndarray) else v for k, v in changes.items()}
    digest = hashlib.sha256(self.content_hash.encode())
    for name in sorted(changes):
      digest.update(name.encode())
      _digest(changes[name], digest)
    return dataclasses.replace(self, content_hash=digest.hexdigest(), **changes)

  def identity(self) -> dict:
    """What datasets and checkpoints record of the model they were made with (JSON-able):
    {'file': file name, 'sha256': content_hash, 'coordinate_names', 'body_names'}."""
    return {'file': os.path.basename(self.source), 'sha256': self.content_hash,
            'coordinate_names': list(self.coordinate_names),
            'body_names': list(self.body_names)}

  # ---- convenience views -------------------------------------------------
  @property
  def num_coordinates(self) -> int:
    return len(self.coordinate_names)

  @property
  def num_bodies(self) -> int:
    return len(self.body_names)

  @property
  def rotational(self) -> np.ndarray:
    """(C,) bool: OpenSim MotionType Rotational."""
    return np.array([t == 'rotational' for t in self.coordinate_motion_types])

  @property
  def translational(self) -> np.ndarray:
    """(C,) bool: OpenSim MotionType Translational."""
    return np.array([t == 'translational' for t in self.coordinate_motion_types])

  @property
  def joint_parent_body(self) -> np.ndarray:
    """(J,) int: parent body index of each joint, -1 for ground."""
    return np.array([j.parent_body for j in self.joints], np.int32)

  @property
  def joint_child_body(self) -> np.ndarray:
    """(J,) int: child body index of each joint."""
    return np.array([j.child_body for j in self.joints], np.int32)

  @property
  def joint_types(self) -> tuple[str, ...]:
    return tuple(j.kind for j in self.joints)

  def coordinate_index(self, name: str) -> int:
    return _index(self.coordinate_names, name, 'coordinate', self.source)

  def body_index(self, name: str) -> int:
    return _index(self.body_names, name, 'body', self.source)

  def joint_index(self, name: str) -> int:
    return _index(self.joint_names, name, 'joint', self.source)

  def marker_index(self, name: str) -> int:
    return _index(self.marker_names, name, 'marker', self.source)

  def coordinates_from_dict(self, values: dict[str, float],
                            base: np.ndarray | None = None) -> np.ndarray:
    """A (C,) vector: `base` (default: the model defaults) with named entries set."""
    q = np.array(self.default_coordinates if base is None else base, np.float64)
    for name, value in values.items():
      q[self.coordinate_index(name)] = value
    return q

  def __repr__(self) -> str:
    return (f'Skeleton({self.model_name!r} from {self.source!r}: '
            f'{len(self.body_names)} bodies, {len(self.joint_names)} joints, '
            f'{len(self.coordinate_names)} coordinates, '
            f'{len(self.marker_names)} markers, {len(self.couplers)} couplers)')


def _digest(value, digest) -> None:
  """Feeds `value` to `digest` exactly: arrays by dtype, shape and bytes, dataclasses
  (joints, functions) field by field, floats by their round-tripping repr."""
  if isinstance(value, np.ndarray):
    digest.update(f'{value.dtype.str}{value.shape}'.encode())
    digest.update(np.ascontiguousarray(value).tobytes())
  elif dataclasses.is_dataclass(value) and not isinstance(value, type):
    digest.update(type(value).__qualname__.encode())
    for f in dataclasses.fields(value):
      digest.update(f.name.encode())
      _digest(getattr(value, f.name), digest)
  elif isinstance(value, (tuple, list)):
    digest.update(f'{type(value).__name__}{len(value)}'.encode())
    for item in value:
      _digest(item, digest)
  else:
    digest.update(repr(value).encode())


class ModelMismatchError(ValueError):
  """Data or a checkpoint was made with another OpenSim model than the network's."""


def check_same_model(recorded: dict, skel: Skeleton, what: str) -> None:
  """Raises ModelMismatchError unless `recorded` (a `Skeleton.identity()`) is `skel`'s.

  Models match when their file contents (sha256) match; `recorded` without 'sha256'
  (names only) matches on the coordinate and body names. `what` names the recorder in
  the message, e.g. 'dataset odah/lab 1.2.0'.
  """
  problems = []
  for key in ('coordinate_names', 'body_names'):
    if key in recorded and tuple(recorded[key]) != tuple(getattr(skel, key)):
      theirs, mine = list(recorded[key]), list(getattr(skel, key))
      diff = ([f'{a!r} vs {b!r}' for a, b in zip(theirs, mine) if a != b][:3]
              or [f'{len(theirs)} vs {len(mine)} names'])
      problems.append(f'{key} differ ({", ".join(diff)})')
  if recorded.get('sha256') and recorded['sha256'] != skel.content_hash and not problems:
    problems.append('same names, other file content (geometry, ranges or markers)')
  if problems:
    theirs = (f'the OpenSim model {recorded.get("file", "?")} (sha256 {recorded["sha256"][:12]})'
              if recorded.get('sha256') else 'an OpenSim model it records by names only')
    raise ModelMismatchError(
        f'{what} was made with {theirs}, but the network uses '
        f'{skel.source} (sha256 {skel.content_hash[:12]}): {"; ".join(problems)}. Use the '
        'model it was made with (the run config\'s model_path, e.g. '
        '--model_override=model_path=/path/model.osim), or rebuild / retrain with this one.')


# ---- rotation helpers (numpy, load time) ---------------------------------------

def body_fixed_xyz(angles) -> np.ndarray:
  """Rotation matrix of a body-fixed X-Y-Z sequence (OpenSim frame `orientation`)."""
  r = np.eye(3)
  for axis, angle in zip(np.eye(3), angles):
    r = r @ axis_angle_matrix(axis, angle)
  return r


def axis_angle_matrix(axis, angle) -> np.ndarray:
  """Rotation by `angle` about `axis` (normalised here), Rodrigues' formula."""
  axis = np.asarray(axis, np.float64) / np.linalg.norm(axis)
  k = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
  return np.eye(3) + np.sin(angle) * k + (1 - np.cos(angle)) * (k @ k)


def _index(names, name, what, source):
  try:
    return names.index(name)
  except ValueError:
    raise KeyError(f'{source}: no {what} named {name!r}') from None


# A pytree with no leaves: jit treats it as static structure (keyed by content_hash).
jax.tree_util.register_pytree_node(
    Skeleton, lambda s: ((), s), lambda s, _: s)
