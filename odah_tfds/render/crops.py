"""BANet's square person crops (the official pre-processing, `crop_image`).

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
"""

from __future__ import annotations

import math

import numpy as np


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
  from PIL import Image  # pylint: disable=g-import-not-at-top
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
