"""BANet's square person crops (the official pre-processing, `crop_image`), for ODAH's
renders and for real camera frames.

From the person mask's bounding box (x, y, w, h) (w = last - first column + 1):
square side `side = int(max(w, h) * margin) // 2 * 2` (margin 1.1), the box centred in
it as the official code does (`new_x = side // 2 - w // 2`, so the square's origin in
the full image is `offset_x = x - new_x`, likewise y), zeros outside the image, resized
to S x S. `meta = (offset_x, offset_y, scale)` with `scale = side / S` and
`full_px = crop_px * scale + offset` (`banet_jax.geometry.crop_to_full`).

Resampling makes that formula exact: crop pixel i (its centre, OpenCV convention) shows
the full image at `offset + i * scale` (bilinear with PIL, antialiased when
downscaling; nearest for the mask). The official code resizes with `cv2.resize`, whose
half-pixel-centre convention puts crop pixel i at `offset + (i + 0.5) * scale - 0.5`,
i.e. up to half a crop pixel away from what its `meta` says; here image, mask, meta and
joints_2d agree. The official code also pastes only the mask's bounding box into the
square (the rest is zero); here the square keeps the image around the person (BANet
zeroes everything outside the mask at load time anyway).

Real lenses (`undistorted_square_crop`, for camera frames): `square_crop` cuts the crop
out of a pinhole image. Real lenses are not pinholes, and undistorting a whole 1080x1920
frame with `cv2.remap` costs about 45 ms on the 2-core machine, so only the crop is
resampled: crop pixel
(i, j) shows the *undistorted* image at `offset + (i, j) * scale`
(`banet_jax.geometry.crop_to_full` with the camera's pinhole K), looked up in the
distorted frame through the lens model. Images are supersampled (up to 4x per axis) and
area-averaged, which matches `square_crop`'s antialiased downscaling; masks take the
nearest pixel. The square itself follows the official rule (`crop_square`, margin 1.1)
around the bounding box of the undistorted mask outline.

Shapes there: frames (H, W, 3) uint8 RGB, masks (H, W) bool, both in the distorted image.

Turned cameras (`rotation`, for camera frames): the crop can also be cut from the image
of a virtual camera at the same centre with the same K, turned by a rotation: the
real-capture front end aims each camera at the person with a level image x axis, as
ODAH's rigs aim theirs (`banet_jax.capture.pipeline`), so that a camera rolled 26 degrees
on its mount shows the person upright. Crop pixels are then virtual pixels, and the
caller's camera is `(K, rotation @ R, rotation @ t)`.

The module lives in banet_jax because both sides crop: ODAH's renderer and the real-capture
front end (`banet_jax.capture`).
"""

from __future__ import annotations

import math

import cv2
import numpy as np
from PIL import Image

from banet_jax import geometry


class EmptyMaskError(ValueError):
  """A person mask has no pixel (the person is out of view or fully occluded).

  `view` and `frame` say where, when known (set by `clip.render_clip`).
  """

  def __init__(self, message: str, view: int | None = None, frame: int | None = None):
    super().__init__(message)
    self.view = view
    self.frame = frame


def mask_box(mask: np.ndarray) -> tuple[int, int, int, int]:
  """(x, y, w, h) of the bounding box of a (H, W) mask (cv2.boundingRect semantics).

  Raises EmptyMaskError for an empty mask.
  """
  m = np.asarray(mask).astype(bool)
  if m.ndim != 2:
    raise ValueError(f'mask must be (H, W), got {m.shape}')
  cols = np.flatnonzero(m.any(axis=0))
  rows = np.flatnonzero(m.any(axis=1))
  if cols.size == 0:
    raise EmptyMaskError('the person mask is empty: no pixel to crop around')
  return int(cols[0]), int(rows[0]), int(cols[-1] - cols[0] + 1), int(rows[-1] - rows[0] + 1)


def crop_square(box: tuple[int, int, int, int], margin: float = 1.1) -> tuple[int, int, int]:
  """(offset_x, offset_y, side) of the official square around a box (x, y, w, h).

  The side is at least 2 pixels (a 1-pixel box would otherwise give side 0).
  """
  x, y, w, h = box
  if margin <= 0:
    raise ValueError(f'margin must be > 0, got {margin}')
  half = max(int(max(w, h) * margin) // 2, 1)
  return x - (half - w // 2), y - (half - h // 2), 2 * half


def _extract(image: np.ndarray, x0: int, y0: int, size: int) -> np.ndarray:
  """image[y0:y0+size, x0:x0+size] with zeros where the window leaves the image."""
  h, w = image.shape[:2]
  out = np.zeros((size, size) + image.shape[2:], image.dtype)
  xa, ya = max(x0, 0), max(y0, 0)
  xb, yb = min(x0 + size, w), min(y0 + size, h)
  if xa < xb and ya < yb:
    out[ya - y0:yb - y0, xa - x0:xb - x0] = image[ya:yb, xa:xb]
  return out


def resample_square(image: np.ndarray, offset_x: int, offset_y: int, side: int, crop_size: int,
                    nearest: bool = False) -> np.ndarray:
  """The square [offset, offset + side) of `image` (H, W[, C]) resized to crop_size.

  Crop pixel i samples the full image at `offset + i * side / crop_size` (pixel centres);
  zeros outside the image. Bilinear (antialiased when shrinking) or nearest; the output
  has the input's dtype (rounded for integers).
  """
  img = np.asarray(image)
  scale = side / crop_size
  # A margin of pixels around the square so that PIL's box (shifted by half a pixel
  # minus half an output pixel) stays inside the extracted window.
  m = int(math.ceil(0.5 * scale)) + 1
  window = _extract(img, offset_x - m, offset_y - m, side + 2 * m)
  x0 = m + 0.5 - 0.5 * scale
  box = (x0, x0, x0 + side, x0 + side)
  channels = window[..., None] if window.ndim == 2 else window
  resample = Image.Resampling.NEAREST if nearest else Image.Resampling.BILINEAR
  out = np.stack([np.asarray(Image.fromarray(np.ascontiguousarray(channels[..., c], np.float32))
                             .resize((crop_size, crop_size), resample, box=box))
                  for c in range(channels.shape[-1])], axis=-1)
  if np.issubdtype(img.dtype, np.integer):
    info = np.iinfo(img.dtype)
    out = np.clip(np.round(out), info.min, info.max)
  out = out.astype(img.dtype)
  return out[..., 0] if img.ndim == 2 else out


def square_crop(image: np.ndarray, mask: np.ndarray, crop_size: int, margin: float = 1.1
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
  """BANet's square person crop.

  Args:
    image: (H, W, C) image (any dtype; uint8 RGB for ODAH).
    mask: (H, W) bool person mask.
    crop_size: S, the output side.
    margin: square side / longest box side before rounding (official: 1.1).

  Returns:
    crop (S, S, C) (image dtype), crop_mask (S, S) uint8 in {0, 1},
    meta (3,) float32 (offset_x, offset_y, scale): full_px = crop_px * scale + offset.

  Raises:
    EmptyMaskError (a ValueError): the mask is empty.
  """
  img = np.asarray(image)
  m = np.asarray(mask)
  if img.ndim != 3:
    raise ValueError(f'image must be (H, W, C), got {img.shape}')
  if m.shape != img.shape[:2]:
    raise ValueError(f'mask {m.shape} must match the image {img.shape[:2]}')
  if int(crop_size) != crop_size or crop_size < 1:
    raise ValueError(f'crop_size must be a positive integer, got {crop_size}')
  crop_size = int(crop_size)
  ox, oy, side = crop_square(mask_box(m), margin)
  crop = resample_square(img, ox, oy, side, crop_size)
  crop_mask = resample_square(m.astype(np.uint8), ox, oy, side, crop_size, nearest=True)
  meta = np.array([ox, oy, side / crop_size], np.float32)
  return crop, (crop_mask > 0).astype(np.uint8), meta


def distort_pixels(K: np.ndarray, dist: np.ndarray, pixels: np.ndarray) -> np.ndarray:
  """Ideal pinhole pixels (..., 2) -> where the lens puts them in the frame (..., 2)."""
  K = np.asarray(K, np.float64)
  pixels = np.asarray(pixels, np.float64)
  if not np.any(dist):
    return pixels.copy()
  normalized = (pixels - K[:2, 2]) / np.diag(K)[:2]
  return geometry.distort_normalized(normalized, dist) * np.diag(K)[:2] + K[:2, 2]


def turn_pixels(K: np.ndarray, rotation: np.ndarray, pixels: np.ndarray) -> np.ndarray:
  """Pinhole pixels (..., 2) of a camera -> the pixels (..., 2) that show the same rays in
  a camera at the same centre with the same K, whose axes are `rotation @` the first's
  (x_turned = rotation @ x_camera). Rays behind the turned camera come out as nan."""
  K = np.asarray(K, np.float64)
  pixels = np.asarray(pixels, np.float64)
  homog = np.concatenate([pixels, np.ones_like(pixels[..., :1])], axis=-1)
  rays = homog @ (K @ np.asarray(rotation, np.float64) @ np.linalg.inv(K)).T
  with np.errstate(divide='ignore', invalid='ignore'):
    out = rays[..., :2] / rays[..., 2:]
  out[rays[..., 2] <= 1e-9] = np.nan
  return out


def undistorted_box(K: np.ndarray, dist: np.ndarray, mask: np.ndarray,
                    rotation: np.ndarray | None = None) -> tuple[int, int, int, int]:
  """(x, y, w, h) bounding box, in undistorted pixels, of a distorted-frame mask (in the
  camera turned by `rotation`, when given: `turn_pixels`)."""
  contours, _ = cv2.findContours(np.asarray(mask, np.uint8), cv2.RETR_EXTERNAL,
                                 cv2.CHAIN_APPROX_SIMPLE)
  if not contours:
    raise EmptyMaskError('the person mask is empty: no pixel to crop around')
  points = np.concatenate([c.reshape(-1, 2) for c in contours]).astype(np.float64)
  if np.any(dist):
    points = cv2.undistortPoints(points[:, None], K, np.asarray(dist, np.float64),
                                 P=K).reshape(-1, 2)
  if rotation is not None:
    points = turn_pixels(K, rotation, points)
    points = points[np.all(np.isfinite(points), axis=1)]
    if not len(points):
      raise EmptyMaskError('the person mask is behind the turned camera')
  x0, y0 = np.floor(points.min(axis=0)).astype(int)
  x1, y1 = np.floor(points.max(axis=0)).astype(int)
  return int(x0), int(y0), int(x1 - x0 + 1), int(y1 - y0 + 1)


def undistorted_square_crop(frame: np.ndarray, mask: np.ndarray, K: np.ndarray,
                            dist: np.ndarray, crop_size: int, margin: float = 1.1,
                            supersample: int = 4, rotation: np.ndarray | None = None):
  """The official square crop of the undistorted frame, without undistorting the frame.

  Args:
    frame: (H, W, 3) uint8 distorted camera frame. mask: (H, W) bool person mask in it.
    K: (3, 3) pinhole intrinsics; dist: (5,) OpenCV k1 k2 p1 p2 k3 (zeros: pinhole).
    crop_size: S.
    rotation: (3, 3) or None: cut the crop from the image of the camera turned about its
      centre by this rotation (same K; x_turned = rotation @ x_camera), whose extrinsics
      are (rotation @ R, rotation @ t). None: the camera as it is.

  Returns:
    crop (S, S, 3) uint8, crop_mask (S, S) uint8 in {0, 1}, meta (3,) float32
    (offset_x, offset_y, scale) in undistorted pixels of the (turned) camera
    (`geometry.crop_to_full`).

  Raises:
    EmptyMaskError: the mask is empty.
  """
  K = np.asarray(K, np.float64)
  ox, oy, side = crop_square(undistorted_box(K, dist, mask, rotation), margin)
  scale = side / crop_size

  def source_pixels(grid):  # (turned) pinhole pixels -> distorted frame pixels, float32
    if rotation is not None:
      grid = turn_pixels(K, np.asarray(rotation, np.float64).T, grid)
    src = distort_pixels(K, dist, grid)
    return np.nan_to_num(src, nan=-10.0).astype(np.float32)  # nan: zeros, like off-frame

  f = int(max(1, min(supersample, round(scale))))
  fine = (np.arange(crop_size * f) + 0.5) / f - 0.5  # crop-pixel position of each sample
  src = source_pixels(np.stack(np.meshgrid(ox + fine * scale, oy + fine * scale), axis=-1))
  crop = cv2.remap(np.ascontiguousarray(frame), src[..., 0], src[..., 1], cv2.INTER_LINEAR,
                   borderMode=cv2.BORDER_CONSTANT, borderValue=0)
  if f > 1:
    crop = cv2.resize(crop, (crop_size, crop_size), interpolation=cv2.INTER_AREA)
  centres = np.arange(crop_size, dtype=np.float64)
  src = source_pixels(np.stack(np.meshgrid(ox + centres * scale, oy + centres * scale), axis=-1))
  crop_mask = cv2.remap(np.asarray(mask, np.uint8), src[..., 0], src[..., 1], cv2.INTER_NEAREST,
                        borderMode=cv2.BORDER_CONSTANT, borderValue=0)
  return crop, (crop_mask > 0).astype(np.uint8), np.array([ox, oy, scale], np.float32)
