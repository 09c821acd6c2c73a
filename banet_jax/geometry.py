"""Camera conventions of the whole project, and the few projective helpers they need.

Conventions (every module that touches cameras or pixels follows them):

* World frame: the OpenSim ground frame (y up), in metres. (The official BANet code
  keeps camera translations in millimetres; this project converts to metres once, at
  data-loading time.)
* Extrinsics: rotation `R` (3, 3) and translation `t` (3,) map world to camera,
  `x_cam = R @ X + t`. The camera looks along its +z axis; image x runs right, y down
  (OpenCV). The camera centre is `C = -R.T @ t`.
* Intrinsics: `K` (3, 3), pixel = `(K @ x_cam)[:2] / x_cam[2]`. Integer pixel
  coordinates are pixel centres (OpenCV), so pixel (i, j) covers [i-0.5, i+0.5) x
  [j-0.5, j+0.5).
* Lens distortion (real cameras): OpenCV's model with `dist = (k1, k2, p1, p2, k3)`
  acting on normalised camera coordinates (`distort_normalized`); `K` stays the pinhole
  intrinsics. ODAH's renders have none.
* Crops: the network sees square crops of the full image. A crop is described by
  `meta = (offset_x, offset_y, scale)` with `full_px = crop_px * scale + offset`, exactly
  as the official preprocessing writes it (scale = square side / crop size; like the
  official code it ignores the half-pixel shift a resize would strictly imply).

All functions accept numpy or JAX arrays and use the matching array module: numpy in,
numpy out (host-side data preparation, float64 precision kept); any JAX array in, JAX
out (jit-able and differentiable). Leading `...` dimensions broadcast.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np


class Camera(NamedTuple):
  """A pinhole camera: intrinsics `K` (3, 3); world->camera `R` (3, 3), `t` (3,) in metres."""

  K: np.ndarray
  R: np.ndarray
  t: np.ndarray


def _xp(*arrays):
  """jax.numpy if any argument is a JAX array (or tracer), else numpy."""
  return jnp if any(isinstance(a, jax.Array) for a in arrays) else np


def to_camera(points, R, t):
  """World points (..., 3) -> camera-frame points (..., 3), `x_cam = R @ X + t` (metres)."""
  xp = _xp(points, R, t)
  return xp.einsum("ij,...j->...i", R, points) + t


def project(points, K, R, t):
  """Perspective projection of world points.

  Args:
    points: (..., 3) world points in metres.
    K: (3, 3) intrinsics. R: (3, 3), t: (3,) extrinsics (world -> camera).

  Returns:
    (..., 2) full-image pixel coordinates (x right, y down). Points at or behind the
    camera plane give meaningless (possibly inf) values; check `to_camera(...)[..., 2] > 0`
    where that can happen.
  """
  xp = _xp(points, K, R, t)
  uvw = xp.einsum("ij,...j->...i", K, to_camera(points, R, t))
  return uvw[..., :2] / uvw[..., 2:3]


def camera_center(R, t):
  """Camera centre in world coordinates (3,) metres: `C = -R.T @ t`."""
  xp = _xp(R, t)
  return -xp.einsum("ji,j->i", R, t)


def look_at(center, target, up=(0.0, 1.0, 0.0)) -> tuple[np.ndarray, np.ndarray]:
  """World-to-camera (R (3, 3), t (3,)) float64 of a level camera at `center` aimed at
  `target` (world points, metres): the optical axis through the target, image x
  horizontal (perpendicular to `up`, the world's y), image y pointing down. Numpy only.

  Raises ValueError when the centre is the target or the camera looks straight along `up`
  (image x undefined).
  """
  center, target, up = (np.asarray(a, np.float64) for a in (center, target, up))
  forward = target - center
  norm = np.linalg.norm(forward)
  if norm < 1e-9:
    raise ValueError('look_at: the camera centre coincides with the target')
  forward = forward / norm
  right = np.cross(forward, up)
  if np.linalg.norm(right) < 1e-6:
    raise ValueError('look_at: the viewing direction is vertical; the image x axis is undefined')
  right /= np.linalg.norm(right)
  down = np.cross(forward, right)
  rot = np.stack([right, down, forward])
  return rot, -rot @ center


def pixel_rays(pixels, K, R, t):
  """World-space rays through full-image pixels.

  Args:
    pixels: (..., 2) full-image pixel coordinates.
    K, R, t: camera as in `project`.

  Returns:
    origins (..., 3): the camera centre (broadcast), metres;
    directions (..., 3): unit vectors, pointing into the scene (positive camera z), so that
    `project(origins + s * directions)` returns `pixels` for every s > 0.
  """
  xp = _xp(pixels, K, R, t)
  homog = xp.concatenate([pixels, xp.ones_like(pixels[..., :1])], axis=-1)
  d_cam = xp.einsum("ij,...j->...i", xp.linalg.inv(K), homog)
  d_world = xp.einsum("ji,...j->...i", R, d_cam)  # R.T @ d_cam
  d_world = d_world / xp.linalg.norm(d_world, axis=-1, keepdims=True)
  origins = xp.broadcast_to(camera_center(R, t), d_world.shape)
  return origins, d_world


def _split_meta(meta, xp):
  meta = xp.asarray(meta)
  if meta.shape[-1] != 3:
    raise ValueError("crop meta must have a last dimension of 3 (offset_x, offset_y, scale), "
                     f"got shape {meta.shape}")
  return meta[..., :2], meta[..., 2:3]


def crop_to_full(crop_px, meta):
  """Crop pixel coordinates (..., 2) -> full-image pixels: `crop_px * scale + offset`.

  `meta` (..., 3) = (offset_x, offset_y, scale) must broadcast against `crop_px` once its
  last axis is split into offset (..., 2) and scale (..., 1); e.g. pass `meta[:, None]`
  for `crop_px` (V, N, 2) and `meta` (V, 3).
  """
  xp = _xp(crop_px, meta)
  offset, scale = _split_meta(meta, xp)
  return crop_px * scale + offset


def full_to_crop(full_px, meta):
  """Full-image pixel coordinates (..., 2) -> crop pixels: `(full_px - offset) / scale`.

  Inverse of `crop_to_full`; same broadcasting rules for `meta`.
  """
  xp = _xp(full_px, meta)
  offset, scale = _split_meta(meta, xp)
  return (full_px - offset) / scale


def distort_normalized(xy, dist) -> np.ndarray:
  """OpenCV lens distortion of normalised coordinates (..., 2) (x/z, y/z) with
  `dist = (k1, k2, p1, p2, k3)`; numpy, float64."""
  k1, k2, p1, p2, k3 = np.asarray(dist, np.float64)
  xy = np.asarray(xy, np.float64)
  x, y = xy[..., 0], xy[..., 1]
  r2 = x * x + y * y
  radial = 1 + r2 * (k1 + r2 * (k2 + r2 * k3))
  xd = x * radial + 2 * p1 * x * y + p2 * (r2 + 2 * x * x)
  yd = y * radial + p1 * (r2 + 2 * y * y) + 2 * p2 * x * y
  return np.stack([xd, yd], axis=-1)
