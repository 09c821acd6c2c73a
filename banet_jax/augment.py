"""Training-time degradations that make ODAH crops look like a real capture's.

BANet sees only the masked person pixels and the masks (zero outside the mask), so
what differs between ODAH and a lab is mostly there. ODAH masks are exact (the renderer's
coverage); on real video they come from BlazePose's segmentation, which rounds the
outline, swallows a shadow or the floor between the feet, leaves holes and loses thin
limbs and hands. Real pixels have sensor noise, compression and exposure differences.
`benchmarks/mask_realism.py` measures both kinds of masks side by side (the figures the
ranges below were set from are in benchmarks/README.md).

    config = PRESETS['real']
    rng = np.random.default_rng((seed, epoch, item, frame, AUGMENT_STREAM))
    crop, mask = degrade_view(crop, mask, rng, config)     # one view: (S, S, 3), (S, S)

Contract of `degrade_view`:
  * inputs: crop (S, S, 3) uint8 RGB, mask (S, S) {0, 1} (any integer or bool dtype);
    outputs: the same shapes, uint8 and uint8 {0, 1};
  * deterministic for a given rng state; draws from `rng` only (no global state);
  * lengths are fractions of the crop side S (a 64- and a 128-pixel crop of the same view
    are degraded alike);
  * the mask keeps at least `min_area_kept` of its area and stays non-empty (otherwise
    the mask part of the corruption is undone for that view), so the visual hull of the
    two views is never empty because of it.
The crop outside the true mask is the rendered background, so a grown mask shows
background pixels, as a real over-segmentation does.

Used by `banet_jax.data` for training batches only (`PipelineConfig.augment`); evaluation
and prediction never degrade their inputs.
"""

from __future__ import annotations

import dataclasses

import cv2
import numpy as np

# The last entry of the per-frame seed tuple: the augmentation draws from its own stream,
# so the query points of a run without augmentation are unchanged.
AUGMENT_STREAM = 7


@dataclasses.dataclass(frozen=True)
class Degradation:
  """Distributions of the degradations (uniform ranges; lengths in units of the crop side).

  Mask (each applied with its probability, in this order):
    smooth_probability / smooth_sigma_range: round the outline like a segmenter that
      works at a lower resolution and is upsampled (BlazePose: a 256 x 256 map of the
      person's box): Gaussian blur of U(range) and threshold at 0.5; thin tips go.
    morph_probability / morph_range: grow (> 0) or shrink (< 0) the mask by U(range)
      with an elliptical kernel (BlazePose masks are smooth and a little too large
      around the torso, too small at the hands).
    boundary_probability / boundary_amplitude / boundary_scale: wavy outline: the
      mask's signed distance plus a smooth random field of amplitude U(0, a) and
      correlation length `boundary_scale`, thresholded at 0.
    holes_probability / holes_max / hole_radius_range: up to `holes_max` elliptical
      holes inside the mask.
    limb_loss_probability / limb_loss_radius_range: erase a disc at an extremity (a
      mask pixel among the 3 % farthest from the centroid: a hand, a foot or the head).
    blob_probability / blob_size_range: add an ellipse touching the mask: a shadow
      under the feet (flat, at the lowest mask row) or an object at the side.
    min_area_kept: the corrupted mask keeps at least this fraction of the original's
      area, else the original mask is kept.
  Image:
    gain_range, channel_gain_range, gamma_range: exposure, white balance, tone.
    blur_probability / blur_sigma_range: Gaussian blur (defocus, motion), sigma in px
      of a 128-pixel crop.
    noise_sigma_range: Gaussian sensor noise, sRGB units of 255.
    jpeg_probability / jpeg_quality_range: JPEG round trip (video compression).
  """

  smooth_probability: float = 0.0
  smooth_sigma_range: tuple[float, float] = (0.005, 0.015)
  morph_probability: float = 0.0
  morph_range: tuple[float, float] = (0.0, 0.0)
  boundary_probability: float = 0.0
  boundary_amplitude: float = 0.0
  boundary_scale: float = 0.08
  holes_probability: float = 0.0
  holes_max: int = 0
  hole_radius_range: tuple[float, float] = (0.01, 0.03)
  limb_loss_probability: float = 0.0
  limb_loss_radius_range: tuple[float, float] = (0.03, 0.08)
  blob_probability: float = 0.0
  blob_size_range: tuple[float, float] = (0.1, 0.4)
  min_area_kept: float = 0.6
  gain_range: tuple[float, float] = (1.0, 1.0)
  channel_gain_range: tuple[float, float] = (1.0, 1.0)
  gamma_range: tuple[float, float] = (1.0, 1.0)
  blur_probability: float = 0.0
  blur_sigma_range: tuple[float, float] = (0.0, 0.0)
  noise_sigma_range: tuple[float, float] = (0.0, 0.0)
  jpeg_probability: float = 0.0
  jpeg_quality_range: tuple[int, int] = (90, 90)

  def __post_init__(self):
    for field in dataclasses.fields(self):
      value = getattr(self, field.name)
      if field.name.endswith('_probability') and not 0.0 <= value <= 1.0:
        raise ValueError(f'Degradation.{field.name} must lie in [0, 1], got {value}')
      if field.name.endswith('_range') and not value[0] <= value[1]:
        raise ValueError(f'Degradation.{field.name} must be (low, high) with low <= high, '
                         f'got {value}')
    if not 0.0 < self.min_area_kept <= 1.0:
      raise ValueError(f'Degradation.min_area_kept must lie in (0, 1], got {self.min_area_kept}')
    if self.gain_range[0] <= 0 or self.channel_gain_range[0] <= 0 or self.gamma_range[0] <= 0:
      raise ValueError('Degradation gains and gamma must be > 0')
    if not (1 <= self.jpeg_quality_range[0] and self.jpeg_quality_range[1] <= 100):
      raise ValueError(f'Degradation.jpeg_quality_range must lie in [1, 100], got '
                       f'{self.jpeg_quality_range}')
    if self.holes_max < 0 or self.boundary_scale <= 0:
      raise ValueError('Degradation.holes_max must be >= 0 and boundary_scale > 0')

  @property
  def is_identity(self) -> bool:
    return self == Degradation()


PRESETS: dict[str, Degradation] = {
    'none': Degradation(),
    # Set from benchmarks/mask_realism.py on the Pose2Sim demo (BlazePose masks of the
    # network's crops) against odah/lab's exact masks; see benchmarks/README.md.
    'real': Degradation(
        smooth_probability=0.8, smooth_sigma_range=(0.004, 0.012),
        morph_probability=0.5, morph_range=(-0.01, 0.01),
        boundary_probability=0.3, boundary_amplitude=0.01, boundary_scale=0.08,
        holes_probability=0.05, holes_max=1, hole_radius_range=(0.01, 0.02),
        limb_loss_probability=0.25, limb_loss_radius_range=(0.03, 0.07),
        blob_probability=0.2, blob_size_range=(0.1, 0.3),
        min_area_kept=0.6,
        gain_range=(0.6, 1.4), channel_gain_range=(0.85, 1.15), gamma_range=(0.7, 1.4),
        blur_probability=0.3, blur_sigma_range=(0.3, 1.2),
        noise_sigma_range=(0.0, 8.0),
        jpeg_probability=0.5, jpeg_quality_range=(30, 90)),
}


def _ellipse_kernel(radius_px: int) -> np.ndarray:
  size = 2 * radius_px + 1
  return cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (size, size))


def _smooth_field(rng: np.random.Generator, size: int, scale_px: float) -> np.ndarray:
  """(size, size) float32 Gaussian random field, unit standard deviation, correlation
  length ~scale_px (white noise blurred; normalised by its own std)."""
  field = rng.standard_normal((size, size)).astype(np.float32)
  field = cv2.GaussianBlur(field, (0, 0), sigmaX=max(scale_px, 0.5))
  std = float(field.std())
  return field / std if std > 0 else field


def degrade_mask(mask, rng: np.random.Generator, config: Degradation) -> np.ndarray:
  """(S, S) {0, 1} -> (S, S) uint8 {0, 1}: the mask corruptions of `config`."""
  original = (np.asarray(mask) != 0).astype(np.uint8)
  size = original.shape[0]
  area = int(original.sum())
  if area == 0:
    return original
  m = original.copy()
  c = config
  if rng.random() < c.smooth_probability:
    sigma = float(rng.uniform(*c.smooth_sigma_range)) * size
    if sigma > 0.3:
      m = (cv2.GaussianBlur(m.astype(np.float32), (0, 0), sigma) > 0.5).astype(np.uint8)
  if rng.random() < c.morph_probability:
    r = float(rng.uniform(*c.morph_range)) * size
    k = int(round(abs(r)))
    if k >= 1:
      m = (cv2.dilate if r > 0 else cv2.erode)(m, _ellipse_kernel(k))
  if rng.random() < c.boundary_probability:
    amplitude = float(rng.uniform(0.0, c.boundary_amplitude)) * size
    inside = cv2.distanceTransform(m, cv2.DIST_L2, 3)
    outside = cv2.distanceTransform(1 - m, cv2.DIST_L2, 3)
    signed = inside - outside  # > 0 inside, pixels
    m = (signed + amplitude * _smooth_field(rng, size, c.boundary_scale * size) > 0.0)
    m = m.astype(np.uint8)
  if rng.random() < c.holes_probability and c.holes_max > 0:
    ys, xs = np.nonzero(m)
    for _ in range(int(rng.integers(1, c.holes_max + 1))):
      if len(ys) == 0:
        break
      k = int(rng.integers(len(ys)))
      axes = tuple(max(1, int(round(float(rng.uniform(*c.hole_radius_range)) * size)))
                   for _ in range(2))
      cv2.ellipse(m, (int(xs[k]), int(ys[k])), axes, float(rng.uniform(0, 180)), 0, 360, 0, -1)
  if rng.random() < c.limb_loss_probability:
    ys, xs = np.nonzero(m)
    if len(ys):
      d = np.hypot(ys - ys.mean(), xs - xs.mean())
      far = np.flatnonzero(d >= np.quantile(d, 0.97))
      k = int(far[rng.integers(len(far))])
      radius = max(1, int(round(float(rng.uniform(*c.limb_loss_radius_range)) * size)))
      cv2.circle(m, (int(xs[k]), int(ys[k])), radius, 0, -1)
  if rng.random() < c.blob_probability:
    ys, xs = np.nonzero(m)
    if len(ys):
      width = float(rng.uniform(*c.blob_size_range)) * size
      if rng.random() < 0.5:  # a shadow: flat, under the lowest mask row (image y down)
        bottom = int(ys.max())
        x0 = float(xs[ys >= bottom - 0.05 * size].mean())
        center = (int(round(x0 + rng.uniform(-0.5, 0.5) * width)), bottom)
        axes = (max(1, int(round(width))), max(1, int(round(0.06 * size))))
        angle = 0.0
      else:  # an object at the outline
        boundary = np.flatnonzero((cv2.dilate(m, _ellipse_kernel(1)) - m)
                                  .reshape(-1)) if m.any() else np.array([], np.int64)
        if len(boundary) == 0:
          boundary = np.array([ys[0] * size + xs[0]])
        k = int(boundary[rng.integers(len(boundary))])
        center = (int(k % size), int(k // size))
        axes = (max(1, int(round(0.5 * width))), max(1, int(round(0.25 * width))))
        angle = float(rng.uniform(0, 180))
      cv2.ellipse(m, center, axes, angle, 0, 360, 1, -1)
  if m.sum() < c.min_area_kept * area:
    return original
  return m


def degrade_image(crop, rng: np.random.Generator, config: Degradation) -> np.ndarray:
  """(S, S, 3) uint8 -> (S, S, 3) uint8: exposure, blur, noise and JPEG of `config`."""
  image = np.asarray(crop)
  if image.dtype != np.uint8 or image.ndim != 3 or image.shape[-1] != 3:
    raise ValueError(f'degrade_image needs an (S, S, 3) uint8 crop, got {image.dtype} '
                     f'{image.shape}')
  c = config
  size = image.shape[0]
  x = image.astype(np.float32) / 255.0
  gain = float(rng.uniform(*c.gain_range)) * rng.uniform(*c.channel_gain_range, size=3)
  gamma = float(rng.uniform(*c.gamma_range))
  x = np.clip(x * gain.astype(np.float32), 0.0, 1.0) ** gamma
  if rng.random() < c.blur_probability:
    sigma = float(rng.uniform(*c.blur_sigma_range)) * size / 128.0
    if sigma > 0.05:
      x = cv2.GaussianBlur(x, (0, 0), sigmaX=sigma)
  sigma = float(rng.uniform(*c.noise_sigma_range)) / 255.0
  if sigma > 0:
    x = x + sigma * rng.standard_normal(x.shape).astype(np.float32)
  out = np.clip(np.rint(x * 255.0), 0, 255).astype(np.uint8)
  if rng.random() < c.jpeg_probability:
    quality = int(rng.integers(c.jpeg_quality_range[0], c.jpeg_quality_range[1] + 1))
    ok, encoded = cv2.imencode('.jpg', out[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, quality])
    if ok:
      out = np.ascontiguousarray(cv2.imdecode(encoded, cv2.IMREAD_COLOR)[..., ::-1])
  return out


def degrade_view(crop, mask, rng: np.random.Generator, config: Degradation
                 ) -> tuple[np.ndarray, np.ndarray]:
  """One view's crop (S, S, 3) uint8 and mask (S, S) -> degraded (see module docstring).

  The identity config returns the inputs unchanged and draws nothing.
  """
  if config.is_identity:
    return np.asarray(crop), np.asarray(mask)
  mask = degrade_mask(mask, rng, config)
  return degrade_image(crop, rng, config), mask
