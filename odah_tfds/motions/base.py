"""The `Motion` record shared by every motion source of ODAH.

A `Motion` is a clip of the project model's 39 generalised coordinates per frame
(`Skeleton.coordinate_names` order, radians for rotational and metres for
translational coordinates, float64) plus its frame rate, the family that produced
it and the parameters that were sampled for it. Body backends turn it into native
pose parameters by retargeting; OpenSim tools can read it as a `.mot` table.

Serialisation: `to_dict`/`from_dict` give a JSON-serialisable dict (coordinates as
nested lists), `save_npz`/`load_npz` a compact `.npz` (coordinates as an array, the
rest as a JSON string).
"""

from __future__ import annotations

import dataclasses
import json
import pathlib
from typing import Any

import numpy as np

FORMAT_VERSION = 1


def _json_clean(value: Any, what: str) -> Any:
  """A deep copy of `value` made of JSON types only (numpy scalars/arrays converted)."""
  if isinstance(value, np.ndarray):
    return _json_clean(value.tolist(), what)
  if isinstance(value, np.generic):
    return _json_clean(value.item(), what)
  if isinstance(value, dict):
    out = {}
    for k, v in value.items():
      if not isinstance(k, str):
        raise TypeError(f'{what}: keys must be strings, got {k!r}')
      out[k] = _json_clean(v, f'{what}[{k!r}]')
    return out
  if isinstance(value, (list, tuple)):
    return [_json_clean(v, what) for v in value]
  if value is None or isinstance(value, (bool, int, str)):
    return value
  if isinstance(value, float):
    if not np.isfinite(value):
      raise ValueError(f'{what}: non-finite float {value!r} is not JSON-serialisable')
    return value
  raise TypeError(f'{what}: {type(value).__name__} is not JSON-serialisable')


@dataclasses.dataclass(frozen=True, eq=False)
class Motion:
  """A clip of the project model's coordinates.

  Attributes:
    family: name of the generator (e.g. 'walking') or source (e.g. 'amass').
    fps: frame rate in Hz (> 0).
    coordinates: (T, C) float64, read-only; column c is `coordinate_names[c]`,
      radians (rotational) or metres (translational).
    coordinate_names: C names, the skeleton's `coordinate_names` order.
    params: the sampled parameters, JSON types only (copied and checked on creation).
    seed: integer seed the clip was sampled from, when it was given one; otherwise
      `params['rng_state']` holds the generator state at the start of sampling.

  Equality is identity (arrays make value equality ambiguous); compare with
  `np.array_equal(a.coordinates, b.coordinates)`.
  """

  family: str
  fps: float
  coordinates: np.ndarray
  coordinate_names: tuple[str, ...]
  params: dict = dataclasses.field(default_factory=dict)
  seed: int | None = None

  def __post_init__(self):
    if not isinstance(self.family, str) or not self.family:
      raise ValueError(f'Motion.family must be a non-empty string, got {self.family!r}')
    fps = float(self.fps)
    if not np.isfinite(fps) or fps <= 0:
      raise ValueError(f'Motion.fps must be a positive number, got {self.fps!r}')
    names = tuple(self.coordinate_names)
    if not all(isinstance(n, str) for n in names) or len(set(names)) != len(names):
      raise ValueError('Motion.coordinate_names must be distinct strings')
    coords = np.array(self.coordinates, dtype=np.float64, copy=True)
    if coords.ndim != 2 or coords.shape[1] != len(names) or coords.shape[0] < 1:
      raise ValueError(f'Motion.coordinates must have shape (T >= 1, {len(names)}) to match '
                       f'coordinate_names, got {np.shape(self.coordinates)}')
    if not np.all(np.isfinite(coords)):
      bad = sorted({names[c] for c in np.nonzero(~np.isfinite(coords))[1]})
      raise ValueError(f'Motion.coordinates has non-finite values in {bad}')
    coords.setflags(write=False)
    if self.seed is not None and not isinstance(self.seed, (int, np.integer)):
      raise TypeError(f'Motion.seed must be an int or None, got {type(self.seed).__name__}')
    object.__setattr__(self, 'fps', fps)
    object.__setattr__(self, 'coordinate_names', names)
    object.__setattr__(self, 'coordinates', coords)
    object.__setattr__(self, 'params', _json_clean(dict(self.params), 'Motion.params'))
    object.__setattr__(self, 'seed', None if self.seed is None else int(self.seed))

  @property
  def num_frames(self) -> int:
    return int(self.coordinates.shape[0])

  @property
  def duration(self) -> float:
    """num_frames / fps, in seconds."""
    return self.num_frames / self.fps

  @property
  def times(self) -> np.ndarray:
    """(T,) float64 frame times in seconds, starting at 0."""
    return np.arange(self.num_frames, dtype=np.float64) / self.fps

  def coordinate(self, name: str) -> np.ndarray:
    """(T,) values of one coordinate (read-only view)."""
    try:
      return self.coordinates[:, self.coordinate_names.index(name)]
    except ValueError:
      raise KeyError(f'no coordinate {name!r}; known: {self.coordinate_names}') from None

  def window(self, first: int, num_frames: int) -> Motion:
    """Frames [first, first + num_frames) as a clip of its own.

    The clip starts where every clip starts (pelvis origin above x = z = 0 in its first
    frame, heading kept); `params` gains `window_first_frame` and `source_frames`, and
    the per-frame intervals the families record (`flight_frames`,
    `single_stance_frames`: [first, end) pairs) are cut to the window and re-counted
    from it. Used to take a random stretch of a motion that is longer than a clip, so
    that a short clip can land anywhere in a slow repetition rather than always at its
    start (`odah_tfds.labels.LabelConfig.motion_frames`).
    """
    first, num_frames = int(first), int(num_frames)
    if num_frames < 1 or first < 0 or first + num_frames > self.num_frames:
      raise ValueError(f'window [{first}, {first + num_frames}) is not inside the '
                       f'{self.num_frames} frames of the motion')
    q = np.array(self.coordinates[first:first + num_frames])
    for name in ('pelvis_tx', 'pelvis_tz'):
      if name in self.coordinate_names:
        c = self.coordinate_names.index(name)
        q[:, c] -= q[0, c]
    params = dict(self.params)
    for key in ('flight_frames', 'single_stance_frames'):
      if isinstance(params.get(key), list):
        cut = [[max(a, first) - first, min(b, first + num_frames) - first, *rest]
               for a, b, *rest in params[key]]
        params[key] = [seg for seg in cut if seg[1] > seg[0]]
    params.update(window_first_frame=first, source_frames=self.num_frames)
    return dataclasses.replace(self, coordinates=q, params=params)

  def to_dict(self) -> dict:
    """A JSON-serialisable dict; `Motion.from_dict` inverts it exactly."""
    return {
        'format_version': FORMAT_VERSION,
        'family': self.family,
        'fps': self.fps,
        'coordinate_names': list(self.coordinate_names),
        # Python floats keep all 17 significant digits through json.
        'coordinates': self.coordinates.tolist(),
        'params': self.params,
        'seed': self.seed,
    }

  @classmethod
  def from_dict(cls, data: dict) -> Motion:
    """Inverse of `to_dict` (also accepts `coordinates` as an array)."""
    missing = {'family', 'fps', 'coordinate_names', 'coordinates'} - set(data)
    if missing:
      raise KeyError(f'Motion.from_dict: missing keys {sorted(missing)}')
    version = data.get('format_version', FORMAT_VERSION)
    if version != FORMAT_VERSION:
      raise ValueError(f'Motion.from_dict: format_version {version} is not supported '
                       f'(expected {FORMAT_VERSION})')
    return cls(family=data['family'], fps=data['fps'],
               coordinates=np.asarray(data['coordinates'], dtype=np.float64),
               coordinate_names=tuple(data['coordinate_names']),
               params=dict(data.get('params') or {}), seed=data.get('seed'))

  def to_json(self) -> str:
    return json.dumps(self.to_dict())

  @classmethod
  def from_json(cls, text: str) -> Motion:
    return cls.from_dict(json.loads(text))

  def save_npz(self, path: str | pathlib.Path) -> None:
    """Writes `coordinates` as an array and everything else as a JSON string."""
    meta = self.to_dict()
    del meta['coordinates']
    np.savez(path, coordinates=self.coordinates, meta=np.array(json.dumps(meta)))

  @classmethod
  def load_npz(cls, path: str | pathlib.Path) -> Motion:
    with np.load(path, allow_pickle=False) as data:
      if 'coordinates' not in data or 'meta' not in data:
        raise KeyError(f'{path}: expected arrays "coordinates" and "meta" '
                       f'(written by Motion.save_npz), found {sorted(data.files)}')
      meta = json.loads(str(data['meta']))
      meta['coordinates'] = data['coordinates']
    return cls.from_dict(meta)
