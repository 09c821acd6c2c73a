"""Pixel-aligned feature sampling and BANet's two-view visual-hull query points.

* `grid_sample_bilinear`: JAX port of PyTorch's
  `grid_sample(mode='bilinear', align_corners=True, padding_mode='zeros')` for NHWC maps
  and a list of points per image (jit-able, differentiable).
* `crop_pixels_to_grid`: the official crop-pixel -> [-1, 1] normalisation, px / S * 2 - 1.
* `sample_visual_hull_points`: host-side (numpy) query-point sampler of the data loader:
  random 3-D points inside the visual hull of the person masks of calibrated views, and
  their crop-pixel coordinates in every view (dossier §2.4, steps 1-3).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from banet_jax import geometry

# Orders of the query points fed to the network (BANetConfig.point_order).
POINT_ORDERS = ('random', 'height')
# What the encoder sees of the person (BANetConfig.appearance; banet_jax.data.normalize_images).
APPEARANCES = ('rgb', 'silhouette')


def grid_sample_bilinear(features: jax.Array, xy: jax.Array) -> jax.Array:
  """Bilinear sampling of feature maps at normalised points (PyTorch semantics).

  Matches `torch.nn.functional.grid_sample(features_nchw, xy[:, :, None, :],
  mode='bilinear', padding_mode='zeros', align_corners=True)[..., 0]` transposed to
  (B, N, C): x = -1 / +1 are the centres of the first / last column, y likewise for rows;
  taps that fall outside the map contribute zero (so points beyond the border fade to 0
  over one pixel and points further out give exactly 0).

  Args:
    features: (B, H, W, C) feature maps, any float dtype.
    xy: (B, N, 2) sampling points, (x along W, y along H), nominally in [-1, 1].

  Returns:
    (B, N, C) samples in the dtype of `features`. The interpolation weights and the
    weighted sum are computed in float32 (at least), then cast.
  """
  if features.ndim != 4 or xy.ndim != 3 or xy.shape[-1] != 2 or xy.shape[0] != features.shape[0]:
    raise ValueError(
        "grid_sample_bilinear expects features (B, H, W, C) and xy (B, N, 2) with the same B; "
        f"got {features.shape} and {xy.shape}")
  b, h, w, c = features.shape
  acc_dtype = jnp.promote_types(features.dtype, jnp.float32)
  xy = xy.astype(jnp.promote_types(xy.dtype, jnp.float32))
  # align_corners=True: -1 -> 0, +1 -> size-1.
  ix = (xy[..., 0] + 1) * 0.5 * (w - 1)
  iy = (xy[..., 1] + 1) * 0.5 * (h - 1)
  x0 = jnp.floor(ix)
  y0 = jnp.floor(iy)
  fx = (ix - x0).astype(acc_dtype)
  fy = (iy - y0).astype(acc_dtype)
  x0 = x0.astype(jnp.int32)
  y0 = y0.astype(jnp.int32)
  flat = features.reshape(b, h * w, c)

  def tap(xi, yi, weight):
    valid = (xi >= 0) & (xi < w) & (yi >= 0) & (yi < h)
    idx = jnp.clip(yi, 0, h - 1) * w + jnp.clip(xi, 0, w - 1)  # (B, N), always in range
    vals = jnp.take_along_axis(flat, idx[..., None], axis=1).astype(acc_dtype)
    return vals * jnp.where(valid, weight, 0.0)[..., None]

  out = (tap(x0, y0, (1 - fx) * (1 - fy)) + tap(x0 + 1, y0, fx * (1 - fy))
         + tap(x0, y0 + 1, (1 - fx) * fy) + tap(x0 + 1, y0 + 1, fx * fy))
  return out.astype(features.dtype)


def crop_pixels_to_grid(pixels, crop_size: int):
  """Crop pixel coordinates -> grid_sample coordinates, `px / crop_size * 2 - 1`.

  This is the official normalisation. Note it divides by the crop size (256), not by
  size - 1 (255): with `align_corners=True` pixel 0 maps exactly to the first feature
  column but pixel 255 maps to 0.992, slightly inside the last one. Kept on purpose so
  that features are read where the official network reads them. Because the value only
  depends on px / S, the same coordinates address the half-resolution feature maps.

  Args:
    pixels: (..., 2) crop pixel coordinates (numpy or JAX).
    crop_size: S, the side of the square crop in pixels.

  Returns:
    (..., 2) coordinates of the same array type.
  """
  return pixels / crop_size * 2 - 1


class VisualHullSample(NamedTuple):
  """Output of `sample_visual_hull_points` (unpacks as a 2-tuple)."""

  points_world: np.ndarray  # (N, 3) float32, metres, world frame
  crop_pixels: np.ndarray  # (V, N, 2) float32, crop pixel coordinates of the points in each view


def _inside_masks(points, foreground, cameras, crop_meta):
  """Boolean (P,): in front of every camera and in the foreground of every crop mask.

  A projection is looked up at its nearest crop pixel (integer coordinates are pixel
  centres); projections outside the crop are outside the mask.
  """
  v, s_h, s_w = foreground.shape
  keep = np.ones(points.shape[0], dtype=bool)
  for view in range(v):
    k, r, t = cameras[view]
    keep &= geometry.to_camera(points, r, t)[:, 2] > 0
    with np.errstate(divide="ignore", invalid="ignore"):
      crop = geometry.full_to_crop(geometry.project(points, k, r, t), crop_meta[view])
    crop = np.where(np.isfinite(crop), crop, -1.0)
    ij = np.floor(crop + 0.5)
    inside = (ij[:, 0] >= 0) & (ij[:, 0] < s_w) & (ij[:, 1] >= 0) & (ij[:, 1] < s_h)
    ij = np.where(inside[:, None], ij, 0).astype(np.int64)
    keep &= inside & foreground[view, ij[:, 1], ij[:, 0]]
  return keep


def sample_visual_hull_points(masks, cameras: Sequence, crop_meta, num_points: int,
                              rng: np.random.Generator, ray_step: float = 0.05, *,
                              depth_center=None) -> VisualHullSample:
  """Random 3-D query points inside the visual hull of calibrated person masks.

  Host-side numpy, deterministic given `rng`. Follows the official data loader:
    1. in each view, draw `num_points` distinct foreground pixels of the crop mask (all of
       them if the mask has fewer; the official code would fail there);
    2. map them to full-image pixels with the crop meta and cast their camera rays. Each
       ray gets a reference length L_i: its distance to the plane through `depth_center`
       (default: the world origin) perpendicular to the line from the camera centre to
       that point. This is where the official `pinv(P)` back-projection lands (its point
       X satisfies X . C = -1 in millimetres, i.e. that plane for the origin, up to
       1/|C|). Points are placed at distances L_i - k from the camera for
       k in arange(-L/2, L/2, ray_step), L = mean of L_i; only positive distances are kept;
    3. keep the candidates (from the rays of all views) that lie in front of every camera
       and project onto the foreground of every mask (nearest crop pixel; outside the crop
       counts as background, where the official code clipped to the border pixel). If fewer
       than `num_points` survive, pad by drawing survivors again with replacement; then
       draw `num_points` of them without replacement (so the order is random).

  Args:
    masks: (V, S, S) person masks of the crops, nonzero = foreground (V >= 1, 2 in BANet).
    cameras: V cameras, each `geometry.Camera` or a (K, R, t) triple (metres).
    crop_meta: (V, 3) per view (offset_x, offset_y, scale), `full = crop * scale + offset`.
    num_points: N, number of points to return.
    rng: numpy Generator; the only source of randomness.
    ray_step: spacing of the candidate points along each ray, metres (official 50 mm).
    depth_center: (3,) world point that fixes the reference plane of step 2, or None for
      the world origin (the official behaviour).

  Returns:
    VisualHullSample(points_world (N, 3) float32 metres,
                     crop_pixels (V, N, 2) float32 sub-pixel crop coordinates of the points,
                     unclipped; they lie within half a pixel of a foreground pixel centre).
    The network input `points_centered` is `points_world - points_world.mean(0)`. (The
    official loader truncates the crop coordinates to integers; here they stay exact.)

  Raises:
    ValueError: on inconsistent shapes, a mask without foreground, or when no candidate
      point projects inside all masks (e.g. cameras that do not match the masks).
  """
  masks = np.asarray(masks)
  if masks.ndim != 3:
    raise ValueError(f"masks must have shape (V, S, S), got {masks.shape}")
  v = masks.shape[0]
  crop_meta = np.asarray(crop_meta, dtype=np.float64)
  if crop_meta.shape != (v, 3):
    raise ValueError(f"crop_meta must have shape (V, 3) = ({v}, 3), got {crop_meta.shape}")
  if len(cameras) != v:
    raise ValueError(f"got {len(cameras)} cameras for {v} masks; need one camera per view")
  if num_points < 1:
    raise ValueError(f"num_points must be >= 1, got {num_points}")
  if not ray_step > 0:
    raise ValueError(f"ray_step must be > 0 metres, got {ray_step}")
  cams = []
  for i, cam in enumerate(cameras):
    k, r, t = (np.asarray(a, dtype=np.float64) for a in cam)
    if k.shape != (3, 3) or r.shape != (3, 3) or t.shape != (3,):
      raise ValueError(f"camera {i}: expected K (3, 3), R (3, 3), t (3,); "
                       f"got {k.shape}, {r.shape}, {t.shape}")
    cams.append((k, r, t))
  center = np.zeros(3) if depth_center is None else np.asarray(depth_center, np.float64)
  foreground = masks != 0

  candidates = []
  for view in range(v):
    ys, xs = np.nonzero(foreground[view])
    if xs.size == 0:
      raise ValueError(f"mask of view {view} has no foreground pixels; cannot sample query points")
    pick = rng.choice(xs.size, size=min(num_points, xs.size), replace=False)
    crop_px = np.stack([xs[pick], ys[pick]], axis=-1).astype(np.float64)
    k, r, t = cams[view]
    origins, dirs = geometry.pixel_rays(geometry.crop_to_full(crop_px, crop_meta[view]), k, r, t)
    to_center = center - origins[0]
    dist = np.linalg.norm(to_center)
    if dist == 0:
      raise ValueError(
          f"camera {view} sits at depth_center {center}; the reference plane is undefined")
    normal = to_center / dist
    cos = dirs @ normal
    facing = cos > 1e-6  # rays parallel to / away from the plane have no reference length
    if not np.any(facing):
      continue
    ref_len = dist / cos[facing]
    half = ref_len.mean() / 2
    dists = ref_len[:, None] - np.arange(-half, half, ray_step)[None, :]
    pts = origins[0] + dists[..., None] * dirs[facing][:, None, :]
    candidates.append(pts[dists > 0])
  candidates = np.concatenate(candidates, axis=0) if candidates else np.zeros((0, 3))
  candidates = candidates[_inside_masks(candidates, foreground, cams, crop_meta)]
  if candidates.shape[0] == 0:
    raise ValueError(
        "no candidate point projects inside all masks: the cameras or crop meta do not match "
        "the masks (or the masks do not overlap in 3-D)")
  if candidates.shape[0] < num_points:
    extra = rng.choice(candidates.shape[0], size=num_points - candidates.shape[0], replace=True)
    candidates = np.concatenate([candidates, candidates[extra]], axis=0)
  points = candidates[rng.choice(candidates.shape[0], size=num_points, replace=False)]
  crop_pixels = np.stack([
      geometry.full_to_crop(geometry.project(points, *cams[view]), crop_meta[view])
      for view in range(v)])
  return VisualHullSample(points.astype(np.float32), crop_pixels.astype(np.float32))
