"""Common interface of the ODAH body models (anny, SMPL-X) and shared conventions.

A body backend turns a subject (`shape`) and per-frame native pose parameters into
mesh vertices and virtual markers in the ODAH world frame:

  World frame = ground frame of the project's OpenSim model
  (`banet_jax.skeleton.models.DEFAULT_MODEL_PATH`): metres, x anterior (forward),
  y up, z to the subject's right; the floor is y = 0.

Every backend converts from its native axes with a constant rotation
`NATIVE_TO_WORLD` (p_world = NATIVE_TO_WORLD @ p_native + root placement) and
documents it. The virtual markers are named exactly as the project model's markers
(`Skeleton.marker_names`, 63), in that order.

This module (and the whole `odah_tfds` stage) never imports TensorFlow.
"""

from __future__ import annotations

import abc
import dataclasses
from typing import Any

import numpy as np

from banet_jax.skeleton.models import project_skeleton

# Names of the project model's bodies used by the body backends.
PELVIS = 'pelvis'


class ManualFilesError(FileNotFoundError):
  """A licensed file that the user must download by hand is missing or unusable.

  The message says which file is expected where and where to get it. Subclasses
  name the asset (e.g. `smplx_body.SmplxModelFilesError`).
  """


def project_marker_names() -> tuple[str, ...]:
  """The 63 marker names of the project model, in model order."""
  return tuple(project_skeleton().marker_names)


@dataclasses.dataclass(frozen=True, eq=False)
class BodyFrames:
  """A posed body sequence in the world frame, plus what regenerates it.

  Attributes:
    vertices: (T, V, 3) float32, metres, world frame.
    markers: (T, M, 3) float32, metres, world frame; order = `marker_names`.
    marker_names: the M marker names (the project model's).
    faces: (F, 3) int32 triangle vertex indices (the same for every frame).
    body_model: backend name ('anny', 'smplx').
    shape: the subject the frames were posed for (backend-specific, frozen).
    native_poses: the backend's native pose parameters (backend-specific).
    root_translation: (T, 3) float64 world position of the rig's root joint, or None
      (the backend's native placement was used).
  """

  vertices: np.ndarray
  markers: np.ndarray
  marker_names: tuple[str, ...]
  faces: np.ndarray
  body_model: str
  shape: Any
  native_poses: Any
  root_translation: np.ndarray | None

  @property
  def num_frames(self) -> int:
    return int(self.vertices.shape[0])

  def marker(self, name: str) -> np.ndarray:
    """(T, 3) trajectory of one marker."""
    try:
      return self.markers[:, self.marker_names.index(name)]
    except ValueError:
      raise KeyError(f'unknown marker {name!r}; known: {self.marker_names}') from None


class BodyModel(abc.ABC):
  """A parametric body backend.

  Subclasses define the native pose type (a frozen dataclass of arrays with a
  leading frame axis T) and the subject type (`shape`).
  """

  #: (3, 3) rotation, p_world = NATIVE_TO_WORLD @ p_native.
  NATIVE_TO_WORLD: np.ndarray

  @property
  @abc.abstractmethod
  def name(self) -> str:
    """Backend name, e.g. 'anny'."""

  @property
  @abc.abstractmethod
  def faces(self) -> np.ndarray:
    """(F, 3) int32 triangles."""

  @property
  @abc.abstractmethod
  def num_vertices(self) -> int:
    """V."""

  @property
  def marker_names(self) -> tuple[str, ...]:
    """The project model's 63 marker names; `pose` returns markers in this order."""
    return project_marker_names()

  @abc.abstractmethod
  def pose(self, shape, native_poses, root_translation=None) -> BodyFrames:
    """Poses `shape` with `native_poses` (T frames).

    Args:
      shape: the backend's subject.
      native_poses: the backend's pose parameters, leading axis T.
      root_translation: optional (T, 3) world position (metres) of the rig's root
        joint; None keeps the backend's native placement.

    Returns:
      BodyFrames with vertices (T, V, 3) and markers (T, 63, 3), float32, world frame.
    """

  @abc.abstractmethod
  def retarget(self, shape, motion_coordinates, **kwargs):
    """Project-model coordinates (T, 39) -> (native_poses, root_translation (T, 3))."""

  @abc.abstractmethod
  def sample_subject(self, rng: np.random.Generator):
    """A random subject from the backend's documented distribution."""


def check_rotation(matrix: np.ndarray, name: str) -> None:
  """Raises ValueError unless `matrix` is a proper 3x3 rotation."""
  m = np.asarray(matrix, dtype=np.float64)
  if m.shape != (3, 3) or not np.allclose(m @ m.T, np.eye(3), atol=1e-9) or \
      not np.isclose(np.linalg.det(m), 1.0):
    raise ValueError(f'{name} must be a proper 3x3 rotation, got {matrix!r}')


def as_frames(array, name: str, trailing: tuple[int, ...], dtype=np.float64) -> np.ndarray:
  """`array` as (T, *trailing) of `dtype`; a clear ValueError otherwise."""
  a = np.asarray(array, dtype=dtype)
  if a.ndim != 1 + len(trailing) or tuple(a.shape[1:]) != tuple(trailing):
    raise ValueError(f'{name} must have shape (T, {", ".join(map(str, trailing))}), '
                     f'got {a.shape}')
  if not np.all(np.isfinite(a)):
    raise ValueError(f'{name} contains non-finite values')
  return a
