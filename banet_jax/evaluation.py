"""Evaluation metrics, the mean-pose baseline, and their table and plots.

Metrics over a set of frames (the paper's headline is the first):
* `coordinate_mae_deg`: mean absolute error per rotational coordinate, in degrees, with
  differences wrapped to (-180, 180]. Pelvis translations (metres) and coordinates the
  network does not predict (global translations) are not in it; `coordinate_mae_m`
  reports the predicted translational ones.
* `mpjpe_mm`: mean per-point position error of BANet's points (body mass centres and
  joint centres), root-relative (the pelvis joint centre subtracted), millimetres.
* `scale_mae`: mean absolute error of the (B, 3) body scale factors (unitless; 0.01 is
  1 % of the generic segment).
* `tracking` (`coordinate_tracking`, BANet only): per rotational coordinate, whether the
  prediction moves with the truth: their Pearson correlation and the ratio of their
  standard deviations. An MAE near the mean pose's can hide a constant answer; these
  show it (a network that answers the mean has a spread ratio near 0).
Plain numpy on host arrays; the points come from the skeleton layer.
"""

from __future__ import annotations

import json
import pathlib
from collections.abc import Mapping, Sequence

import numpy as np

from banet_jax import export, filtering
from banet_jax.inference import Predictor
from banet_jax.model.outputs import OutputLayout, root_relative, skeleton_points


def wrap_angle(angle):
  """Angles (radians, any shape) wrapped to [-pi, pi)."""
  return (angle + np.pi) % (2 * np.pi) - np.pi


def circular_mean(angles, axis: int = 0) -> np.ndarray:
  """The circular mean of angles (radians) along `axis`: +179 and -179 deg give 180, not 0."""
  angles = np.asarray(angles, np.float64)
  return np.arctan2(np.sin(angles).mean(axis), np.cos(angles).mean(axis))


def evaluated_coordinates(layout: OutputLayout) -> tuple[np.ndarray, np.ndarray]:
  """(rotational, translational) index arrays of the predicted coordinates that count."""
  skel = layout.skeleton
  predicted = np.asarray(layout.predicted)
  keep = predicted[~np.asarray(skel.locked)[predicted]]
  rotational = keep[np.asarray(skel.rotational)[keep]]
  translational = keep[~np.asarray(skel.rotational)[keep]]
  return rotational, translational


def frame_metrics(layout: OutputLayout, pred_coords, pred_scales, gt_coords,
                  gt_scales) -> dict[str, np.ndarray]:
  """Per-frame errors.

  Args:
    pred_coords, gt_coords: (N, C) radians / metres.
    pred_scales, gt_scales: (N, B, 3).

  Returns:
    {'coordinate_abs_error': (N, C) |wrapped difference| (radians or metres),
     'point_error_mm': (N, P) root-relative Euclidean distances,
     'scale_abs_error': (N, B, 3)}.
  """
  pred_coords, gt_coords = np.asarray(pred_coords, np.float64), np.asarray(gt_coords, np.float64)
  pred_scales, gt_scales = np.asarray(pred_scales, np.float64), np.asarray(gt_scales, np.float64)
  if pred_coords.shape != gt_coords.shape or pred_scales.shape != gt_scales.shape:
    raise ValueError(f'prediction and ground truth shapes differ: {pred_coords.shape} vs '
                     f'{gt_coords.shape}, {pred_scales.shape} vs {gt_scales.shape}')
  diff = pred_coords - gt_coords
  rot = np.asarray(layout.skeleton.rotational)
  diff[:, rot] = wrap_angle(diff[:, rot])
  # Global translations are never predicted: points are compared root-relative.
  pred_points = root_relative(layout, np.asarray(skeleton_points(layout, pred_coords,
                                                                 pred_scales)))
  gt_points = root_relative(layout, np.asarray(skeleton_points(layout, gt_coords, gt_scales)))
  return {'coordinate_abs_error': np.abs(diff),
          'point_error_mm': 1000.0 * np.linalg.norm(pred_points - gt_points, axis=-1),
          'scale_abs_error': np.abs(pred_scales - gt_scales)}


def summarize(layout: OutputLayout, errors: Mapping[str, np.ndarray]) -> dict:
  """Per-frame errors (`frame_metrics`, frames concatenated) -> the reported metrics."""
  skel = layout.skeleton
  rot, trans = evaluated_coordinates(layout)
  coord = errors['coordinate_abs_error']
  per_coordinate = {skel.coordinate_names[c]: float(np.degrees(coord[:, c].mean())) for c in rot}
  point_names = ([f'com_{b}' for b in skel.body_names]
                 + [f'joint_{j}' for j in skel.joint_names])
  return {
      'frames': int(coord.shape[0]),
      'coordinate_mae_deg': float(np.degrees(coord[:, rot].mean())),
      'coordinate_mae_deg_per_coordinate': per_coordinate,
      'coordinate_mae_m': float(coord[:, trans].mean()) if len(trans) else None,
      'mpjpe_mm': float(errors['point_error_mm'].mean()),
      'mpjpe_mm_per_point': dict(zip(point_names,
                                     map(float, errors['point_error_mm'].mean(axis=0)))),
      'scale_mae': float(errors['scale_abs_error'].mean()),
  }


# rad: a series whose standard deviation is below this is held (e.g. the mean pose's),
# up to float rounding.
STILL_RAD = 1e-6


def _circular_deviations(x) -> np.ndarray:
  """(N,) angles (rad) as wrapped differences from their circular mean."""
  x = np.asarray(x, np.float64)
  return wrap_angle(x - circular_mean(x))


def series_tracking(pred, truth) -> tuple[float | None, float | None]:
  """(Pearson r, standard-deviation ratio prediction / truth) of two (N,) angle series
  (radians), each taken as its wrapped deviations from its own circular mean (so angles
  near +-180 deg do not split); r is None when either series is held, the ratio when the
  truth is."""
  p, g = _circular_deviations(pred), _circular_deviations(truth)
  p_sd, g_sd = p.std(), g.std()
  r = (float(np.mean((p - p.mean()) * (g - g.mean())) / (p_sd * g_sd))
       if p_sd > STILL_RAD and g_sd > STILL_RAD else None)
  return r, (float(p_sd / g_sd) if g_sd > STILL_RAD else None)


def coordinate_tracking(layout: OutputLayout, pred_coords, gt_coords) -> dict[str, dict]:
  """Does the prediction move with the truth? Per evaluated rotational coordinate.

  Args:
    pred_coords, gt_coords: (N, C) radians, N >= 2 frames (of any number of clips).

  Returns:
    {name: {'r', 'spread_ratio'} (`series_tracking`), 'truth_sd_deg'}}.
  """
  pred, gt = np.asarray(pred_coords, np.float64), np.asarray(gt_coords, np.float64)
  if pred.shape != gt.shape or pred.ndim != 2 or len(pred) < 2:
    raise ValueError(f'coordinate_tracking needs two (N >= 2, C) arrays, got {pred.shape} '
                     f'and {gt.shape}')
  rot, _ = evaluated_coordinates(layout)
  out = {}
  for c in rot:
    r, ratio = series_tracking(pred[:, c], gt[:, c])
    out[layout.skeleton.coordinate_names[c]] = {
        'r': r, 'spread_ratio': ratio,
        'truth_sd_deg': float(np.degrees(_circular_deviations(gt[:, c]).std()))}
  return out


def tracking_table(tracking: Mapping[str, Mapping]) -> str:
  """Markdown rows of `coordinate_tracking`'s result."""
  lines = ['| coordinate | r (prediction, truth) | spread ratio | truth sd (deg) |',
           '|---|---|---|---|']
  fmt = lambda v: '-' if v is None else f'{v:.2f}'
  for name, t in tracking.items():
    lines.append(f'| {name} | {fmt(t["r"])} | {fmt(t["spread_ratio"])} | '
                 f'{t["truth_sd_deg"]:.1f} |')
  return '\n'.join(lines) + '\n'


def mean_pose(layout: OutputLayout, coordinates, scales) -> tuple[np.ndarray, np.ndarray]:
  """The baseline's constant prediction from training data: circular mean of each
  rotational coordinate, mean of the rest, mean scale factors; global translations 0
  (they are never predicted).

  Args:
    coordinates: (N, C) training frames. scales: (N, B, 3) or (K, B, 3).

  Returns:
    (C,) coordinates and (B, 3) scales.
  """
  coordinates = np.asarray(coordinates, np.float64)
  rot = np.asarray(layout.skeleton.rotational)
  mean = coordinates.mean(axis=0)
  mean[rot] = circular_mean(coordinates[:, rot])
  mean[np.asarray(layout.global_translation)] = 0.0
  return mean, np.asarray(scales, np.float64).mean(axis=0)


def markdown_table(results: Mapping[str, Mapping], skeleton_names: Sequence[str] = ()) -> str:
  """One column per method (e.g. {'BANet': summary, 'mean-pose baseline': summary});
  headline rows, then the per-coordinate MAE rows for `skeleton_names` (default: all)."""
  methods = list(results)
  lines = ['| metric | ' + ' | '.join(methods) + ' |', '|---' * (len(methods) + 1) + '|']

  def row(label, values, fmt):
    lines.append(f'| {label} | ' + ' | '.join(
        '-' if v is None else format(v, fmt) for v in values) + ' |')

  row('frames', [results[m]['frames'] for m in methods], 'd')
  row('**coordinate MAE (deg)**', [results[m]['coordinate_mae_deg'] for m in methods], '.2f')
  row('MPJPE, root-relative (mm)', [results[m]['mpjpe_mm'] for m in methods], '.1f')
  row('body-scale MAE (x100)', [100 * results[m]['scale_mae'] for m in methods], '.2f')
  row('pelvis translation MAE (mm)',
      [None if results[m]['coordinate_mae_m'] is None else 1000 * results[m]['coordinate_mae_m']
       for m in methods], '.1f')
  names = list(skeleton_names) or list(results[methods[0]]['coordinate_mae_deg_per_coordinate'])
  for name in names:
    row(f'{name} (deg)', [results[m]['coordinate_mae_deg_per_coordinate'].get(name)
                          for m in methods], '.2f')
  return '\n'.join(lines) + '\n'


def write_report(out_dir: str | pathlib.Path, results: Mapping[str, Mapping]) -> dict[str, str]:
  """`metrics.json` and `metrics.md` in `out_dir`."""
  out_dir = pathlib.Path(out_dir)
  out_dir.mkdir(parents=True, exist_ok=True)
  (out_dir / 'metrics.json').write_text(json.dumps(results, indent=2))
  text = markdown_table(results)
  for method, summary in results.items():
    if summary.get('tracking'):
      text += (f'\n{method}: does the prediction move with the truth? (`coordinate_tracking`: '
               'a spread ratio near 0 is a constant answer)\n\n' + tracking_table(summary['tracking']))
  (out_dir / 'metrics.md').write_text(text)
  return {'json': str(out_dir / 'metrics.json'), 'markdown': str(out_dir / 'metrics.md')}


def _pyplot():
  """matplotlib.pyplot on the file-only Agg backend (imported on first use)."""
  import matplotlib  # pylint: disable=g-import-not-at-top  (matplotlib, 0.4 s: only when plotting)
  matplotlib.use('Agg')
  # Lazy: after choosing Agg, never at import.
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
  return plt


def _save_figure(fig, path) -> pathlib.Path:
  """Lays out, writes (creating the folder) and closes a figure; returns the path."""
  fig.tight_layout()
  path = pathlib.Path(path)
  path.parent.mkdir(parents=True, exist_ok=True)
  fig.savefig(path, dpi=110)
  _pyplot().close(fig)
  return path


def plot_angle_curves(path, times, coordinate_names: Sequence[str], gt, curves: Mapping,
                      names: Sequence[str], title: str = '') -> pathlib.Path:
  """Ground truth and predicted curves (degrees) of `names` for one clip.

  Args:
    times: (T,) seconds. gt: (T, C) radians, or None (a real capture has none).
    curves: {label: (T, C) radians}.
  """
  plt = _pyplot()
  cols = min(3, len(names))
  rows = -(-len(names) // cols)
  fig, axes = plt.subplots(rows, cols, figsize=(4 * cols, 2.4 * rows), squeeze=False)
  for ax, name in zip(axes.flat, names):
    c = list(coordinate_names).index(name)
    if gt is not None:
      ax.plot(times, np.degrees(gt[:, c]), 'k-', lw=2, label='ground truth')
    for label, values in curves.items():
      ax.plot(times, np.degrees(values[:, c]), '-', lw=1.2, label=label)
    ax.set_title(name, fontsize=9)
    ax.set_xlabel('s', fontsize=8)
    ax.set_ylabel('deg', fontsize=8)
  for ax in list(axes.flat)[len(names):]:
    ax.axis('off')
  axes.flat[0].legend(fontsize=7)
  fig.suptitle(title, fontsize=10)
  return _save_figure(fig, path)


def plot_coordinate_errors(path, results: Mapping[str, Mapping]) -> pathlib.Path:
  """Bar chart of the per-coordinate MAE (degrees), one bar group per coordinate."""
  plt = _pyplot()
  methods = list(results)
  names = list(results[methods[0]]['coordinate_mae_deg_per_coordinate'])
  x = np.arange(len(names))
  width = 0.8 / len(methods)
  fig, ax = plt.subplots(figsize=(max(8, 0.35 * len(names)), 3.5))
  for k, method in enumerate(methods):
    values = [results[method]['coordinate_mae_deg_per_coordinate'][n] for n in names]
    ax.bar(x + k * width, values, width, label=method)
  ax.set_xticks(x + 0.4 - width / 2, names, rotation=90, fontsize=7)
  ax.set_ylabel('MAE (deg)')
  ax.legend(fontsize=8)
  return _save_figure(fig, path)


# Coordinates whose curves the evaluation plots (when the model has them).
PLOTTED_COORDINATES = ('hip_flexion_r', 'knee_angle_r', 'ankle_angle_r', 'lumbar_extension',
                       'arm_flex_r', 'elbow_flex_r')


def text(value) -> str:
  """A TFDS string feature (bytes, a 0-d array or str) as str."""
  value = np.asarray(value).item() if np.ndim(value) == 0 else value
  return value.decode() if isinstance(value, bytes) else str(value)


def select_clips(source, families: Sequence[str] | None = None, max_clips: int = 0) -> list[int]:
  """Indices of the clips of `source` to evaluate: those whose `motion_family` is one of
  `families` (all clips when None), at most `max_clips` of them (0: no limit).

  Raises ValueError when `families` is given and the clips carry no `motion_family`
  (generated clips) or none matches.
  """
  indices = range(len(source))
  if families:
    wanted = set(families)
    chosen, seen = [], set()
    for i in indices:
      clip = source[i]
      if 'motion_family' not in clip:
        raise ValueError('these clips have no motion_family: --families needs an ODAH split')
      family = text(clip['motion_family'])
      seen.add(family)
      if family in wanted:
        chosen.append(i)
    if not chosen:
      raise ValueError(f'no clip of families {sorted(wanted)}; this split has {sorted(seen)}')
    indices = chosen
  indices = list(indices)
  return indices if max_clips <= 0 else indices[:max_clips]


def evaluate_checkpoint(checkpoint: str, split: str, out_dir: str | pathlib.Path, *,
                        dataset: str | None = None, data_dir: str | None = None,
                        max_clips: int = 0, plot_clips: int = 3, export_clips: int = 3,
                        baseline_split: str = 'train', families: Sequence[str] | None = None,
                        cutoff_hz: float | None = None, log=print) -> dict:
  """Metrics of a trained BANet on a split, next to the mean-pose baseline.

  The data are the run's (`TrainConfig.data`), with `dataset` / `data_dir` over them where
  given (`DataConfig.override`); with `families`, only the clips of those motion families
  (`select_clips`; the baseline stays the whole training split's mean pose). Writes into
  `out_dir`: metrics.json, metrics.md (the table), coordinate_errors.png,
  curves_<clip>.png for `plot_clips` clips, and exports/<clip>.{mot,trc,osim} (the
  prediction as OpenSim files) for `export_clips` clips. With `cutoff_hz` (> 0) each clip's
  predicted coordinates are low-passed (`filtering.filter_coordinates`, as `launch.predict
  --videos` writes them) before anything is measured.
  Returns the results dict.
  """
  out_dir = pathlib.Path(out_dir)
  predictor = Predictor.restore(checkpoint)
  layout = predictor.layout
  data_config = predictor.train_config.data.override(dataset, data_dir)
  dataset = data_config.dataset
  open_split = lambda name: data_config.open(name, layout)
  log(f'[eval] {data_config.describe()}, split {split}; baseline: the mean pose of '
      f'{baseline_split}')
  # The baseline: the training split's mean pose and scales.
  train = open_split(baseline_split)
  train_coords = np.concatenate([np.asarray(train[i]['coordinates']) for i in range(len(train))])
  train_scales = np.stack([np.asarray(train[i]['scales']) for i in range(len(train))])
  mean_q, mean_s = mean_pose(layout, train_coords, train_scales)

  source = open_split(split)
  if len(source) == 0:
    raise ValueError(f'{dataset} {split} has no clips')
  selected = select_clips(source, families, max_clips)
  count = len(selected)
  errors = {'BANet': [], 'mean-pose baseline': []}
  predicted, truth = [], []  # (T, C) per clip, for `coordinate_tracking`
  skel = layout.skeleton
  plotted = [n for n in PLOTTED_COORDINATES if n in skel.coordinate_names]
  for i, index in enumerate(selected):
    clip = source[index]
    clip_id = text(clip.get('clip_id', f'clip{i:04d}'))
    gt_q = np.asarray(clip['coordinates'], np.float64)
    gt_s = np.broadcast_to(np.asarray(clip['scales'], np.float64), (len(gt_q),) + mean_s.shape)
    fps = float(np.asarray(clip.get('fps', 60.0)))
    pred = predictor.predict_clip(clip)
    if cutoff_hz:
      pred = dict(pred, coordinates=filtering.filter_coordinates(skel, pred['coordinates'], fps,
                                                                 cutoff_hz))
    pred_s = np.broadcast_to(pred['scales'], gt_s.shape)
    errors['BANet'].append(frame_metrics(layout, pred['coordinates'], pred_s, gt_q, gt_s))
    predicted.append(pred['coordinates'])
    truth.append(gt_q)
    base_q = np.broadcast_to(mean_q, gt_q.shape)
    errors['mean-pose baseline'].append(frame_metrics(layout, base_q, np.broadcast_to(
        mean_s, gt_s.shape), gt_q, gt_s))
    if i < plot_clips:
      plot_angle_curves(out_dir / f'curves_{clip_id}.png', np.arange(len(gt_q)) / fps,
                        skel.coordinate_names, gt_q,
                        {'BANet': pred['coordinates'], 'mean pose': base_q}, plotted,
                        title=f'{clip_id} ({dataset} {split})')
    if i < export_clips:
      export.export_clip(out_dir / 'exports', clip_id, pred['coordinates'], pred['scales'],
                         fps, model_path=layout.skeleton.source)
    log(f'[eval] {i + 1}/{count} {clip_id}')
  results = {}
  for method, per_clip in errors.items():
    merged = {k: np.concatenate([e[k] for e in per_clip]) for k in per_clip[0]}
    results[method] = summarize(layout, merged)
  results['BANet']['checkpoint_step'] = int(predictor.step)
  if sum(map(len, truth)) >= 2:
    results['BANet']['tracking'] = coordinate_tracking(layout, np.concatenate(predicted),
                                                       np.concatenate(truth))
  write_report(out_dir, results)
  plot_coordinate_errors(out_dir / 'coordinate_errors.png', results)
  return results
