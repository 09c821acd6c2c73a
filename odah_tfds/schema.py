"""The ODAH example: one clip of T frames seen from two calibrated views.

This module is the single description of what an `odah` example holds. It is plain
Python (no TensorFlow): the TF-free generation workers fill examples that follow it,
the TFDS builder turns it into `tfds.features`, the dataset README documents it, and
the training input pipeline reads it.

Conventions (see `banet_jax.geometry`): world = the OpenSim ground frame (y up, metres);
cameras `x_cam = R @ X + t`, pixel = `(K @ x_cam)[:2] / z` (OpenCV: x right, y down);
crops `full_px = crop_px * scale + offset` with `crop_meta = (offset_x, offset_y, scale)`.
"""

from __future__ import annotations

import dataclasses

import numpy as np

NUM_VIEWS = 2


@dataclasses.dataclass(frozen=True)
class Feature:
  """One feature: its shape (symbols resolved by `Dims`), dtype and meaning."""

  shape: tuple  # ints or symbol names: 'T', 'S', 'C', 'B', 'J', 'M', 'P', 'V'
  dtype: str  # numpy dtype name, or 'str' for text
  doc: str
  compress: bool = False  # large arrays: stored zlib-compressed


@dataclasses.dataclass(frozen=True)
class Dims:
  """The sizes an example's shapes are built from."""

  frames: int  # T
  crop_size: int  # S
  coordinates: int = 39  # C
  bodies: int = 22  # B
  joints: int = 22  # J
  markers: int = 63  # M: the virtual markers on the mesh

  @property
  def points(self) -> int:  # P: BANet's points, B mass centres then J joint centres
    return self.bodies + self.joints

  def resolve(self, shape: tuple) -> tuple[int, ...]:
    sizes = {'T': self.frames, 'S': self.crop_size, 'C': self.coordinates, 'B': self.bodies,
             'J': self.joints, 'M': self.markers, 'P': self.points, 'V': NUM_VIEWS}
    return tuple(sizes[d] if isinstance(d, str) else int(d) for d in shape)


FEATURES: dict[str, Feature] = {
    # Identity and provenance.
    'clip_id': Feature((), 'str', 'Unique clip name, `<subject>_<k>_<motion family>`.'),
    'subject_id': Feature((), 'str', 'Subject name; every split holds whole subjects.'),
    'body_backend': Feature((), 'str', "Body model that made the mesh: 'anny' or 'smplx'."),
    'body_shape_json': Feature((), 'str', "The backend's subject parameters (JSON)."),
    'stature': Feature((), 'float32', 'Subject stature from the rest mesh (m).'),
    'mass': Feature((), 'float32', 'Subject mass from the mesh volume x 1040 kg/m^3 (kg).'),
    'motion_family': Feature((), 'str', "Motion family, e.g. 'walking', or 'amass'."),
    'motion_params_json': Feature((), 'str', 'Parameters the motion was sampled with (JSON).'),
    'appearance_json': Feature((), 'str', 'Rendering choices: skin, clothing, background, '
                               'lights, blur, camera rig parameters (JSON).'),
    'fps': Feature((), 'float32', 'Frame rate (Hz).'),
    # The two views.
    'crops': Feature(('V', 'T', 'S', 'S', 3), 'uint8',
                     'Square person crops, RGB, background kept (BANet zeroes it with the '
                     'mask at load time, as the official pre-processing).', compress=True),
    'masks': Feature(('V', 'T', 'S', 'S'), 'uint8', 'Person masks of the crops, 0 or 1.',
                     compress=True),
    'crop_meta': Feature(('V', 'T', 3), 'float32',
                         '(offset_x, offset_y, scale): full_px = crop_px * scale + offset.'),
    'image_size': Feature(('V', 2), 'int32', 'Full rendered image (width, height), pixels.'),
    'camera_K': Feature(('V', 3, 3), 'float32', 'Intrinsics (pixels).'),
    'camera_R': Feature(('V', 3, 3), 'float32', 'World-to-camera rotation.'),
    'camera_t': Feature(('V', 3), 'float32', 'World-to-camera translation (m).'),
    # Kinematic labels (OpenSim, the project's full-body model).
    'coordinate_names': Feature(('C',), 'str', 'OpenSim coordinate names, model order.'),
    'coordinates': Feature(('T', 'C'), 'float32',
                           'IK coordinates: radians, pelvis translations in metres.'),
    'body_names': Feature(('B',), 'str', 'OpenSim body names, model order.'),
    'scales': Feature(('B', 3), 'float32', 'Per-body (x, y, z) scale factors relative to the '
                      'generic model (what BANet predicts).'),
    'points': Feature(('T', 'P', 3), 'float32', 'BANet points in the world (m): B body mass '
                      'centres, then J joint centres, from the skeleton layer.'),
    'joints_2d': Feature(('V', 'T', 'J', 2), 'float32',
                         'Joint centres projected into each view, crop pixels.'),
    'marker_names': Feature(('M',), 'str', 'Virtual marker names (the model marker set).'),
    'markers': Feature(('T', 'M', 3), 'float32', 'Virtual markers on the mesh, world (m).'),
    'ik_marker_errors': Feature(('T', 'M'), 'float32', 'Per-marker IK distance (m).'),
    'ik_rms': Feature(('T',), 'float32', 'IK marker RMS per frame (m).'),
    'ik_flagged': Feature(('T',), 'bool', 'Frame IK RMS above the 2 cm gate.'),
}


def shapes(dims: Dims) -> dict[str, tuple[int, ...]]:
  """Every feature's concrete shape."""
  return {name: dims.resolve(f.shape) for name, f in FEATURES.items()}


def check_example(example: dict, dims: Dims) -> None:
  """Raises ValueError unless `example` has exactly the features, shapes and dtypes."""
  missing = sorted(set(FEATURES) - set(example))
  extra = sorted(set(example) - set(FEATURES))
  if missing or extra:
    raise ValueError(f'example features differ from the schema: missing {missing}, '
                     f'unexpected {extra}')
  for name, shape in shapes(dims).items():
    feature, value = FEATURES[name], example[name]
    if feature.dtype == 'str':
      arr = np.asarray(value)
      if arr.shape != shape or arr.dtype.kind not in 'UOS':
        raise ValueError(f'{name}: expected text of shape {shape}, got {arr.dtype} {arr.shape}')
      continue
    arr = np.asarray(value)
    if arr.shape != shape or arr.dtype != np.dtype(feature.dtype):
      raise ValueError(f'{name}: expected {feature.dtype} {shape}, got {arr.dtype} {arr.shape}')


def fake_example(dims: Dims, rng: np.random.Generator) -> dict:
  """A random example with the right shapes and dtypes (for pipeline tests only)."""
  example = {}
  for name, shape in shapes(dims).items():
    dtype = FEATURES[name].dtype
    if dtype == 'str':
      example[name] = (np.array([f'{name}_{i}' for i in range(int(np.prod(shape)))]).reshape(shape)
                       if shape else f'{name}')
    elif dtype == 'bool':
      example[name] = rng.random(shape) < 0.1
    elif dtype == 'uint8':
      example[name] = rng.integers(0, 2 if name == 'masks' else 256, shape, dtype=np.uint8)
    elif dtype == 'int32':
      example[name] = rng.integers(1, 512, shape).astype(np.int32)
    else:
      example[name] = rng.standard_normal(shape).astype(dtype)
  return example
