"""Geometrically consistent synthetic ODAH examples (no rendering, no dataset needed).

A stick figure of the project skeleton seen by two calibrated cameras: every example
follows `odah_tfds.schema` (same features, shapes and dtypes), and the fields the
training pipeline reads are consistent with each other, so the visual-hull sampler finds
points and the losses are meaningful:

* `coordinates` (T, C): a smooth in-range trajectory per clip (the root close to the
  world origin); `scales` (B, 3) near 1; `points` (T, B + J, 3): the skeleton layer's
  mass and joint centres of those coordinates and scales;
* `camera_K/R/t`: a 'front' and a 'side' camera, ~4 m away, looking at the body;
* `masks` (V, T, S, S): capsules (radius `limb_radius`) between each joint centre and
  the mass centres of its two bodies, projected into square crops around the figure;
  `crop_meta` (V, T, 3) maps crop to full-image pixels;
* `crops` (V, T, S, S, 3): each capsule in a fixed colour, over a noisy background
  (which the pipeline must zero with the mask);
* `joints_2d`: joint centres in crop pixels. Every other feature is random
  (`schema.fake_example`).

Used by tests, the smoke run (`--dataset=synthetic`) and the throughput benchmark.
"""

from __future__ import annotations

import collections.abc
import threading

import jax.numpy as jnp
import numpy as np

from banet_jax import geometry
from banet_jax.model.outputs import OutputLayout, skeleton_points
from odah_tfds import schema

# Full rendered image (width, height) and focal length of the synthetic cameras, pixels.
FULL_IMAGE = (512, 512)
FOCAL = 700.0


def _segments(layout: OutputLayout) -> np.ndarray:
  """(G, 2) point indices of the stick figure: parent COM - joint centre - child COM."""
  skel = layout.skeleton
  bodies = skel.num_bodies
  pairs = []
  for j, joint in enumerate(skel.joints):
    if joint.parent_body >= 0:
      pairs.append((joint.parent_body, bodies + j))
    pairs.append((bodies + j, joint.child_body))
  return np.asarray(pairs, np.int64)


def _trajectory(layout: OutputLayout, frames: int, rng: np.random.Generator) -> np.ndarray:
  """(T, C) smooth coordinates inside their ranges; global translations near 0."""
  skel = layout.skeleton
  lo, hi = skel.coordinate_ranges.T
  mid, amp = (lo + hi) / 2, 0.2 * (hi - lo)
  phase = rng.uniform(0, 2 * np.pi, skel.num_coordinates)
  freq = rng.uniform(0.3, 1.0, skel.num_coordinates)
  time = np.linspace(0.0, 1.0, frames)[:, None]
  coords = mid + amp * np.sin(2 * np.pi * freq * time + phase)
  drift = rng.uniform(-0.1, 0.1, (1, len(layout.global_translation))) * time
  coords[:, layout.global_translation] = drift
  return coords.astype(np.float32)


def _distance_to_segments(pixels, starts, ends):
  """Distances (P, G) from pixels (P, 2) to the 2-D segments starts/ends (G, 2)."""
  seg = ends - starts
  length2 = np.maximum(np.sum(seg * seg, axis=-1), 1e-12)
  rel = pixels[:, None, :] - starts[None]
  frac = np.clip(np.sum(rel * seg[None], axis=-1) / length2, 0.0, 1.0)
  closest = starts[None] + frac[..., None] * seg[None]
  return np.linalg.norm(pixels[:, None, :] - closest, axis=-1)


def synthetic_example(layout: OutputLayout, frames: int, crop_size: int,
                      rng: np.random.Generator, *, limb_radius: float = 0.07,
                      clip_id: str = 'synthetic') -> dict:
  """One ODAH-schema example (see module docstring); deterministic given `rng`.

  Args:
    layout: the output layout of the skeleton the labels refer to (39 coordinates and
      22 bodies for the project model, as the schema expects).
    frames: T. crop_size: S.
    rng: the only source of randomness.
    limb_radius: capsule radius of the stick figure, metres.
    clip_id: stored in `clip_id`.

  Returns:
    dict of numpy arrays and strings following `odah_tfds.schema.FEATURES`.
  """
  skel = layout.skeleton
  dims = schema.Dims(frames=frames, crop_size=crop_size, coordinates=skel.num_coordinates,
                     bodies=skel.num_bodies, joints=len(skel.joint_names))
  example = schema.fake_example(dims, rng)
  coords = _trajectory(layout, frames, rng)
  scales = rng.uniform(0.9, 1.1, (skel.num_bodies, 3)).astype(np.float32)
  # Op by op: a few tenths of a second per clip, where compiling the layer takes ~10 s.
  points = np.asarray(skeleton_points(layout, jnp.asarray(coords), jnp.broadcast_to(
      jnp.asarray(scales), (frames,) + scales.shape)), np.float64)  # (T, P, 3)

  target = np.array([0.0, -0.2, 0.0])
  width, height = FULL_IMAGE
  k = np.array([[FOCAL, 0, width / 2], [0, FOCAL, height / 2], [0, 0, 1]])
  cams = []
  for base in (0.0, np.pi / 2):  # 'front' then 'side'
    azimuth = base + rng.uniform(-0.25, 0.25)
    dist = rng.uniform(3.5, 4.5)
    center = target + np.array([dist * np.sin(azimuth), rng.uniform(0.2, 0.6),
                                dist * np.cos(azimuth)])
    cams.append((k,) + geometry.look_at(center, target))

  segments = _segments(layout)
  palette = np.random.default_rng(1234).integers(64, 256, (len(segments), 3))
  grid = np.stack(np.meshgrid(np.arange(crop_size), np.arange(crop_size), indexing='xy'),
                  axis=-1).reshape(-1, 2).astype(np.float64)  # (S*S, 2) pixel centres (x, y)
  v = len(cams)
  crops = rng.integers(0, 60, (v, frames, crop_size, crop_size, 3)).astype(np.uint8)
  masks = np.zeros((v, frames, crop_size, crop_size), np.uint8)
  meta = np.zeros((v, frames, 3), np.float32)
  joints_2d = np.zeros((v, frames, len(skel.joint_names), 2), np.float32)
  for view, (kk, r, t) in enumerate(cams):
    full = geometry.project(points, kk, r, t)  # (T, P, 2)
    depth = geometry.to_camera(points, r, t)[..., 2]  # (T, P)
    for f in range(frames):
      radius_px = FOCAL * limb_radius / depth[f].min()
      lo_xy = full[f].min(0) - radius_px
      hi_xy = full[f].max(0) + radius_px
      side = 1.15 * np.max(hi_xy - lo_xy)
      offset = (lo_xy + hi_xy) / 2 - side / 2
      meta[view, f] = (offset[0], offset[1], side / crop_size)
      crop_pts = geometry.full_to_crop(full[f], meta[view, f].astype(np.float64))
      dist = _distance_to_segments(grid, crop_pts[segments[:, 0]], crop_pts[segments[:, 1]])
      inside = dist.min(1) < radius_px / meta[view, f, 2]
      nearest = dist.argmin(1)
      masks[view, f] = inside.reshape(crop_size, crop_size)
      rgb = crops[view, f].reshape(-1, 3)
      rgb[inside] = palette[nearest[inside]]
      joints_2d[view, f] = crop_pts[skel.num_bodies:]

  example.update(
      clip_id=clip_id, subject_id=f'{clip_id}_subject', body_backend='synthetic',
      fps=np.float32(60.0), crops=crops, masks=masks, crop_meta=meta,
      image_size=np.array([FULL_IMAGE] * v, np.int32),
      camera_K=np.stack([c[0] for c in cams]).astype(np.float32),
      camera_R=np.stack([c[1] for c in cams]).astype(np.float32),
      camera_t=np.stack([c[2] for c in cams]).astype(np.float32),
      coordinate_names=np.array(skel.coordinate_names), coordinates=coords,
      body_names=np.array(skel.body_names), scales=scales,
      points=points.astype(np.float32), joints_2d=joints_2d)
  return example


class SyntheticClips(collections.abc.Sequence):
  """A random-access source of `num_clips` synthetic examples.

  Example i is `synthetic_example(..., rng=default_rng((seed, i)))`, made on first access
  and kept (thread-safe), so every read of an index returns the same arrays.
  """

  def __init__(self, layout: OutputLayout, num_clips: int, frames: int, crop_size: int,
               seed: int = 0):
    if num_clips < 1 or frames < 1 or crop_size < 8:
      raise ValueError('SyntheticClips needs num_clips >= 1, frames >= 1 and crop_size >= 8; '
                       f'got {num_clips}, {frames}, {crop_size}')
    self._layout, self._frames, self._crop_size = layout, frames, crop_size
    self._num_clips, self._seed = num_clips, seed
    self._made: dict[int, dict] = {}
    self._lock = threading.Lock()

  def __len__(self) -> int:
    return self._num_clips

  def __getitem__(self, index):
    if isinstance(index, slice):
      return [self[i] for i in range(*index.indices(len(self)))]
    index = int(index)
    if not -len(self) <= index < len(self):
      raise IndexError(f'clip {index} out of range for {len(self)} synthetic clips')
    index %= len(self)
    with self._lock:
      if index not in self._made:
        self._made[index] = synthetic_example(
            self._layout, self._frames, self._crop_size,
            np.random.default_rng((self._seed, index)), clip_id=f'synthetic_{index:05d}')
      return self._made[index]

  def __getstate__(self):  # picklable for multiprocessing workers: rebuilt lazily there
    state = self.__dict__.copy()
    state['_made'], state['_lock'] = {}, None
    return state

  def __setstate__(self, state):
    self.__dict__.update(state)
    self._lock = threading.Lock()
