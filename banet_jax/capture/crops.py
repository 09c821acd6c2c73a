"""BANet's square person crops, cut from distorted camera frames as if undistorted.

`odah_tfds.render.crops.square_crop` cuts the official crop out of a pinhole image. Real
lenses are not pinholes, and undistorting a whole 1080x1920 frame with `cv2.remap` costs
about 45 ms on the 2-core machine, so here only the crop is resampled: crop pixel
(i, j) shows the *undistorted* image at `offset + (i, j) * scale`
(`banet_jax.geometry.crop_to_full` with the camera's pinhole K), looked up in the
distorted frame through the lens model. Images are supersampled (up to 4x per axis) and
area-averaged, which matches `square_crop`'s antialiased downscaling; masks take the
nearest pixel. The square itself follows the official rule (`crop_square`, margin 1.1)
around the bounding box of the undistorted mask outline.

Shapes: frames (H, W, 3) uint8 RGB, masks (H, W) bool, both in the distorted image.
"""

from __future__ import annotations

import cv2
import numpy as np

from odah_tfds.render.crops import EmptyMaskError, crop_square


def distort_pixels(K: np.ndarray, dist: np.ndarray, pixels: np.ndarray) -> np.ndarray:
  """Ideal pinhole pixels (..., 2) -> where the lens puts them in the frame (..., 2)."""
  pixels = np.asarray(pixels, np.float64)
  shape = pixels.shape
  flat = pixels.reshape(-1, 2)
  if not np.any(dist):
    return pixels.copy()
  normalized = (flat - K[:2, 2]) / np.diag(K)[:2]
  rays = np.concatenate([normalized, np.ones((len(flat), 1))], axis=1)
  out, _ = cv2.projectPoints(rays, np.zeros(3), np.zeros(3), K, np.asarray(dist, np.float64))
  return out.reshape(shape)


def undistorted_box(K: np.ndarray, dist: np.ndarray, mask: np.ndarray
                    ) -> tuple[int, int, int, int]:
  """(x, y, w, h) bounding box, in undistorted pixels, of a distorted-frame mask."""
  contours, _ = cv2.findContours(np.asarray(mask, np.uint8), cv2.RETR_EXTERNAL,
                                 cv2.CHAIN_APPROX_SIMPLE)
  if not contours:
    raise EmptyMaskError('the person mask is empty: no pixel to crop around')
  points = np.concatenate([c.reshape(-1, 2) for c in contours]).astype(np.float64)
  if np.any(dist):
    points = cv2.undistortPoints(points[:, None], K, np.asarray(dist, np.float64),
                                 P=K).reshape(-1, 2)
  x0, y0 = np.floor(points.min(axis=0)).astype(int)
  x1, y1 = np.floor(points.max(axis=0)).astype(int)
  return int(x0), int(y0), int(x1 - x0 + 1), int(y1 - y0 + 1)


def undistorted_square_crop(frame: np.ndarray, mask: np.ndarray, K: np.ndarray,
                            dist: np.ndarray, crop_size: int, margin: float = 1.1,
                            supersample: int = 4):
  """The official square crop of the undistorted frame, without undistorting the frame.

  Args:
    frame: (H, W, 3) uint8 distorted camera frame. mask: (H, W) bool person mask in it.
    K: (3, 3) pinhole intrinsics; dist: (5,) OpenCV k1 k2 p1 p2 k3 (zeros: pinhole).
    crop_size: S.

  Returns:
    crop (S, S, 3) uint8, crop_mask (S, S) uint8 in {0, 1}, meta (3,) float32
    (offset_x, offset_y, scale) in undistorted pixels (`geometry.crop_to_full`).

  Raises:
    EmptyMaskError: the mask is empty.
  """
  K = np.asarray(K, np.float64)
  ox, oy, side = crop_square(undistorted_box(K, dist, mask), margin)
  scale = side / crop_size
  f = int(max(1, min(supersample, round(scale))))
  fine = (np.arange(crop_size * f) + 0.5) / f - 0.5  # crop-pixel position of each sample
  grid = np.stack(np.meshgrid(ox + fine * scale, oy + fine * scale), axis=-1)
  src = distort_pixels(K, dist, grid).astype(np.float32)
  crop = cv2.remap(np.ascontiguousarray(frame), src[..., 0], src[..., 1], cv2.INTER_LINEAR,
                   borderMode=cv2.BORDER_CONSTANT, borderValue=0)
  if f > 1:
    crop = cv2.resize(crop, (crop_size, crop_size), interpolation=cv2.INTER_AREA)
  centres = np.arange(crop_size, dtype=np.float64)
  grid = np.stack(np.meshgrid(ox + centres * scale, oy + centres * scale), axis=-1)
  src = distort_pixels(K, dist, grid).astype(np.float32)
  crop_mask = cv2.remap(np.asarray(mask, np.uint8), src[..., 0], src[..., 1], cv2.INTER_NEAREST,
                        borderMode=cv2.BORDER_CONSTANT, borderValue=0)
  return crop, (crop_mask > 0).astype(np.uint8), np.array([ox, oy, scale], np.float32)
