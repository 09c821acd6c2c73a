r"""Masks BANet sees: a real capture's BlazePose masks against ODAH's, exact and degraded.

    .venv/bin/python benchmarks/mask_realism.py --dataset=odah/lab --num_frames=240

BANet's images are zero outside the mask, so the mask is most of what it sees. This
measures, on the network crops of the Pose2Sim demo (cam01 + cam04, BlazePose masks, cut
as `launch.predict --videos` cuts them) and on ODAH test clips (exact renderer masks; then
the same masks through `banet_jax.augment.PRESETS[--augment]`), per view and frame:

  fill      mask area / area of the mask's bounding box (fat or thin outlines)
  solidity  mask area / area of its convex hull (missing limbs and gaps lower it)
  rough     outline length / outline length of the mask smoothed by a Gaussian of
            2 % of the crop side (1 = smooth; jagged or wavy outlines are higher)
  holes     area of the holes (filled mask - mask) / mask area
  parts     connected pieces larger than 0.5 % of the mask
  thin      fraction of the mask removed by an opening of radius 2.5 % of the crop side
            (forearms, hands, shanks and feet; a segmenter that loses thin limbs has less)
  box       mask bounding box height / crop side (the crop margin)

It prints the median and the 10th / 90th percentiles of each, one row per source. The
`real` preset's ranges were chosen so that its row brackets the real capture's.
"""

from __future__ import annotations

import pathlib
import sys

from absl import app, flags, logging
import numpy as np

if __package__ in (None, ''):
  sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))

_DATASET = flags.DEFINE_string('dataset', 'odah/lab', 'ODAH dataset (array_record) to compare.')
_DATA_DIR = flags.DEFINE_string('data_dir', None, 'TFDS data directory.')
_SPLIT = flags.DEFINE_string('split', 'test', 'ODAH split.')
_CLIPS = flags.DEFINE_integer('clips', 16, 'ODAH clips read.')
_NUM_FRAMES = flags.DEFINE_integer('num_frames', 240, 'Frames of the real capture.')
_PAIR = flags.DEFINE_string('pair', 'cam01+cam04', 'Network cameras of the real capture.')
_CROP = flags.DEFINE_integer('crop_size', 128, 'Crop side both sources are compared at.')
_AUGMENT = flags.DEFINE_string('augment', 'real', 'banet_jax.augment preset for the third row.')
_SEED = flags.DEFINE_integer('seed', 0, 'Seed of the degradations.')

STATS = ('fill', 'solidity', 'rough', 'holes', 'parts', 'thin', 'box')


def mask_stats(mask) -> dict[str, float] | None:
  """The STATS of one (S, S) mask (see the module docstring); None for an empty mask."""
  import cv2  # pylint: disable=g-import-not-at-top
  m = (np.asarray(mask) != 0).astype(np.uint8)
  size = m.shape[0]
  area = float(m.sum())
  if area == 0:
    return None
  ys, xs = np.nonzero(m)
  box_h, box_w = ys.max() - ys.min() + 1, xs.max() - xs.min() + 1
  contours, _ = cv2.findContours(m, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
  hull = cv2.convexHull(np.concatenate(contours))
  hull_area = max(cv2.contourArea(hull), 1.0)
  smooth = (cv2.GaussianBlur(m.astype(np.float32), (0, 0), 0.02 * size) > 0.5).astype(np.uint8)
  outline = sum(cv2.arcLength(c, True) for c in contours)
  smooth_contours, _ = cv2.findContours(smooth, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
  smooth_outline = max(sum(cv2.arcLength(c, True) for c in smooth_contours), 1.0)
  filled = np.zeros_like(m)
  cv2.drawContours(filled, contours, -1, 1, -1)
  count, _, comp_stats, _ = cv2.connectedComponentsWithStats(m, connectivity=8)
  pieces = int(np.sum(comp_stats[1:, cv2.CC_STAT_AREA] > 0.005 * area))
  r = max(1, int(round(0.025 * size)))
  kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1))
  opened = cv2.morphologyEx(m, cv2.MORPH_OPEN, kernel)
  del count
  return {'fill': area / (box_h * box_w), 'solidity': area / hull_area,
          'rough': outline / smooth_outline, 'holes': float(filled.sum() - area) / area,
          'parts': float(pieces), 'thin': float(m.sum() - opened.sum()) / area,
          'box': box_h / size}


def _resize_mask(mask, size: int):
  import cv2  # pylint: disable=g-import-not-at-top
  m = (np.asarray(mask) != 0).astype(np.uint8)
  if m.shape[0] == size:
    return m
  return cv2.resize(m, (size, size), interpolation=cv2.INTER_NEAREST)


def summarize(rows: list[dict]) -> dict[str, str]:
  out = {}
  for name in STATS:
    values = np.array([r[name] for r in rows])
    p10, p50, p90 = np.percentile(values, [10, 50, 90])
    out[name] = f'{p50:.3f} ({p10:.3f}-{p90:.3f})'
  return out


def real_masks(num_frames: int, pair: str, crop_size: int) -> list[np.ndarray]:
  """BlazePose masks of the demo's network crops, (S, S) each (views x frames)."""
  # pylint: disable=g-import-not-at-top
  from banet_jax.capture import calibration, demo, persons, pipeline
  folder = demo.demo_capture_dir('Demo_SinglePerson')
  videos = [str(folder / 'videos' / f'cam0{i}.mp4') for i in range(1, 5)]
  calib = calibration.load_calibration(folder / 'calibration' / 'Calib.qca.txt')
  capture = pipeline.open_capture(videos, calib, tuple(pair.split('+')),
                                  num_frames=num_frames, pose=persons.BlazePose(),
                                  progress=False)
  masks = []
  for segment in capture.segments(crop_size, segment_frames=64):
    clip_masks = segment.clip['masks']  # (V, T, S, S)
    masks += [m for view in clip_masks for m in view]
  return masks


def odah_masks(dataset: str, split: str, clips: int, data_dir, crop_size: int
               ) -> tuple[list[np.ndarray], list[np.ndarray]]:
  """Exact masks (resized to crop_size) and their crops of the first `clips` clips."""
  from banet_jax import data  # pylint: disable=g-import-not-at-top
  source = data.open_source(dataset, split, data_dir)
  masks, crops = [], []
  for k in range(min(clips, len(source))):
    example = source[k]
    for view_masks, view_crops in zip(example['masks'], example['crops']):
      for m, c in zip(view_masks, view_crops):
        masks.append(_resize_mask(m, crop_size))
        crops.append(c)
  return masks, crops


def main(argv):
  del argv
  logging.set_verbosity(logging.WARNING)
  import cv2  # pylint: disable=g-import-not-at-top
  from banet_jax import augment  # pylint: disable=g-import-not-at-top
  from benchmarks import _common  # pylint: disable=g-import-not-at-top
  print(_common.platform_info())
  size = _CROP.value
  sources = {}
  real = real_masks(_NUM_FRAMES.value, _PAIR.value, size)
  sources[f'Pose2Sim demo, BlazePose ({_PAIR.value}, {_NUM_FRAMES.value} frames)'] = real
  exact, crops = odah_masks(_DATASET.value, _SPLIT.value, _CLIPS.value, _DATA_DIR.value, size)
  sources[f'{_DATASET.value} {_SPLIT.value}, exact ({_CLIPS.value} clips)'] = exact
  config = augment.PRESETS[_AUGMENT.value]
  rng = np.random.default_rng(_SEED.value)
  degraded = []
  for m, c in zip(exact, crops):
    crop = cv2.resize(c, (size, size), interpolation=cv2.INTER_LINEAR)
    degraded.append(augment.degrade_view(crop, m, rng, config)[1])
  sources[f'{_DATASET.value} {_SPLIT.value}, augment={_AUGMENT.value}'] = degraded
  print(f'\nmask statistics at {size}-px crops: median (10th-90th percentile)\n')
  print('| masks | n | ' + ' | '.join(STATS) + ' |')
  print('|---|---|' + '---|' * len(STATS))
  for name, masks in sources.items():
    rows = [s for s in (mask_stats(m) for m in masks) if s is not None]
    summary = summarize(rows)
    print(f'| {name} | {len(rows)} | ' + ' | '.join(summary[s] for s in STATS) + ' |')


if __name__ == '__main__':
  app.run(main)
