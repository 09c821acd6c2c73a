"""A real capture through BANet (or the keypoint method) to OpenSim files, pictures, a report.

`predict_capture(predictor, capture, out_dir)` writes into `out_dir` (the writing is
`write_capture_outputs`, which the keypoint method, `keypoints.keypoints_capture`, shares):
  <name>.mot / .trc / .osim   the coordinates (pelvis placed where the person stands,
                              `placement`; BANet's low-passed at `cutoff_hz`, 6 Hz by
                              default), the scaled model's markers, the scaled model
  overlay_<camera>.png        a contact sheet per camera: the predicted skeleton (joint
                              centres and bones, projected with the lens model) over frames
                              of every view, the BlazePose landmarks as small dots
  overlays.png                all cameras side by side (rows: frames)
  network_inputs.png          what BANet saw at those frames: the masked crop of each
                              network camera (not written by the keypoint method, which
                              has no network)
  angles.png                  the main coordinates over time
  report.json                 method, cameras, person choice, how far each network camera
                              was turned to aim at the person (`aimed_cameras`), floor,
                              placement residuals, the low-pass filter of the coordinates
                              (`coordinate_filter`), timings
  predictions.npz             raw arrays: coordinates (T, C), scales (B, 3), landmarks
                              (C, T, 33, 2) in pixels as the cameras see them (distorted),
                              visibility (C, T, 33), world landmarks (T, 33, 3), and the
                              method's own (BANet: frame_scales, raw_coordinates before
                              the low-pass filter, pair_coordinates (P, T, C) with
                              several camera pairs; keypoints: marker_errors,
                              marker_names, filtered_landmarks, solved)
Everything is written into a staging folder first and moved into `out_dir` at the end,
so a failure leaves nothing half-written.
"""

from __future__ import annotations

import json
import pathlib
import shutil
import tempfile
import time
from collections.abc import Sequence

import cv2
import numpy as np

from banet_jax import evaluation, export, filtering
from banet_jax.capture import pipeline, placement
from banet_jax.skeleton import forward_kinematics

# Coordinates shown in angles.png (those the model has).
CURVE_COORDINATES = ('pelvis_tilt', 'pelvis_list', 'hip_flexion_r', 'hip_flexion_l',
                     'knee_angle_r', 'knee_angle_l', 'ankle_angle_r', 'ankle_angle_l',
                     'arm_add_r', 'arm_add_l', 'elbow_flex_r', 'elbow_flex_l')


def skeleton_edges(skel) -> list[tuple[int, int]]:
  """(parent joint, child joint) index pairs: each joint to the joint that carries its
  parent body (the bones drawn in overlays)."""
  child_to_joint = {int(b): j for j, b in enumerate(skel.joint_child_body)}
  return [(child_to_joint[int(p)], j) for j, p in enumerate(skel.joint_parent_body)
          if int(p) in child_to_joint]


def draw_skeleton(image: np.ndarray, joints_px: np.ndarray, edges, landmarks_px=None,
                  color=(255, 60, 0)) -> np.ndarray:
  """Draws bones and joints (RGB image, pixel coordinates of that image)."""
  out = image.copy()
  thick = max(1, round(image.shape[1] / 180))
  for a, b in edges:
    pa, pb = joints_px[a], joints_px[b]
    if np.all(np.isfinite([pa, pb])):
      cv2.line(out, tuple(np.round(pa).astype(int)), tuple(np.round(pb).astype(int)), color,
               thick, cv2.LINE_AA)
  for p in joints_px:
    if np.all(np.isfinite(p)):
      cv2.circle(out, tuple(np.round(p).astype(int)), thick + 1, (255, 255, 0), -1, cv2.LINE_AA)
  if landmarks_px is not None:
    for p in landmarks_px:
      if np.all(np.isfinite(p)):
        cv2.circle(out, tuple(np.round(p).astype(int)), thick, (0, 255, 0), -1, cv2.LINE_AA)
  return out


def _label(image, text):
  out = image.copy()
  cv2.putText(out, text, (6, 20), cv2.FONT_HERSHEY_SIMPLEX, 0.55, (255, 255, 255), 2, cv2.LINE_AA)
  cv2.putText(out, text, (6, 20), cv2.FONT_HERSHEY_SIMPLEX, 0.55, (0, 0, 0), 1, cv2.LINE_AA)
  return out


def overlay_sheets(capture, joints_world: np.ndarray, edges, out_dir: pathlib.Path,
                   highlight: Sequence[str] | None = None) -> list[str]:
  """Contact sheets of `capture.thumbnails` with joints (T, J, 3) world projected; the
  cameras in `highlight` (default: the network cameras) are labelled '(network)'."""
  highlight = capture.network_cameras if highlight is None else tuple(highlight)
  frames = sorted(capture.thumbnails)
  columns = []
  for c, (name, cam) in enumerate(zip(capture.names, capture.calibration.cameras)):
    tiles = []
    for f in frames:
      thumb = capture.thumbnails[f][c]
      s = thumb.shape[1] / cam.size[0]
      joints = cam.project(joints_world[f]) * s
      marks = np.where(capture.visibility[c, f, :, None] >= 0.5, capture.landmarks[c, f], np.nan)
      used = ' (network)' if name in highlight else ''
      tiles.append(_label(draw_skeleton(thumb, joints, edges, marks * s),
                          f'{name}{used} frame {int(capture.source_frames[f])}'))
    columns.append(tiles)
  paths = []
  for name, tiles in zip(capture.names, columns):
    path = out_dir / f'overlay_{name}.png'
    cv2.imwrite(str(path), cv2.cvtColor(np.concatenate(tiles, axis=1), cv2.COLOR_RGB2BGR))
    paths.append(str(path))
  height = max(t.shape[0] for tiles in columns for t in tiles)
  rows = [np.concatenate([np.pad(tiles[i], ((0, height - tiles[i].shape[0]), (0, 0), (0, 0)))
                          for tiles in columns], axis=1) for i in range(len(frames))]
  path = out_dir / 'overlays.png'
  cv2.imwrite(str(path), cv2.cvtColor(np.concatenate(rows, axis=0), cv2.COLOR_RGB2BGR))
  return [str(path)] + paths


def network_inputs_sheet(capture, inputs: dict, out_dir: pathlib.Path, side: int = 160) -> str:
  """The masked crops {frame: one (S, S, 3) per network camera} as a grid (rows: frames,
  columns: cameras)."""
  rows = []
  for f in sorted(inputs):
    tiles = [_label(cv2.resize(np.ascontiguousarray(v), (side, side),
                               interpolation=cv2.INTER_NEAREST), name)
             for v, name in zip(inputs[f], capture.network_cameras)]
    rows.append(np.concatenate(tiles, axis=1))
  path = out_dir / 'network_inputs.png'
  cv2.imwrite(str(path), cv2.cvtColor(np.concatenate(rows, axis=0), cv2.COLOR_RGB2BGR))
  return str(path)


def thumbnail_frames(num_frames: int, count: int) -> list[int]:
  """`count` output frames spread over the clip (first and last included)."""
  return sorted({int(round(x)) for x in np.linspace(0, num_frames - 1, max(1, count))})


def average_coordinates(skel, coordinates: Sequence[np.ndarray]) -> np.ndarray:
  """The mean of several predictions of one clip (BANet through several camera pairs).

  Args:
    skel: the `Skeleton` the coordinates refer to.
    coordinates: P arrays (T, C), radians / metres, in the same world.

  Returns:
    (T, C) float64: the circular mean of each rotational coordinate (so +179 and -179 deg
    average to 180, not 0), the arithmetic mean of the others.
  """
  q = np.stack([np.asarray(c, np.float64) for c in coordinates])
  if q.ndim != 3 or q.shape[2] != len(skel.coordinate_names):
    raise ValueError(f'coordinates must be P arrays (T, {len(skel.coordinate_names)}), got '
                     f'shape {q.shape}')
  out = q.mean(axis=0)
  rotational = np.asarray(skel.rotational)
  out[:, rotational] = evaluation.circular_mean(q[:, :, rotational])
  return out


def predict_capture(predictor, capture, out_dir, *, name: str = 'capture',
                    segment_frames: int = 256, overlay_count: int = 6,
                    place_body: bool = True,
                    cutoff_hz: float | None = filtering.CUTOFF_HZ) -> dict:
  """Runs `capture` (a `pipeline.Capture`) through `predictor` and writes the outputs.

  BANet runs on each of the capture's camera pairs (`capture.pairs`); with more than one,
  the coordinates written are their per-frame mean (`average_coordinates`), the body
  scales the mean over pairs and frames, and predictions.npz keeps each pair's as
  `pair_coordinates` (P, T, C).

  `cutoff_hz`: the coordinates (the pelvis placement included) are low-passed at this
  cutoff before they are written (`filtering.filter_coordinates`: zero-lag Butterworth,
  Pose2Sim's 6 Hz by default, as the keypoint method filters its landmarks; predictions.npz
  then keeps the unfiltered ones as `raw_coordinates`); None or 0: written as the network
  predicts them. Returns the report (also written as report.json), with
  the output paths under 'files'.
  """
  skel = predictor.layout.skeleton
  crop_size = predictor.net.config.image_size
  pairs = [pipeline.pair_name(pair) for pair in capture.pairs]
  coords = {pair: [] for pair in pairs}  # per pair: (n, C) per segment
  scales, t_net = [], 0.0
  shown = thumbnail_frames(capture.num_frames, overlay_count)
  inputs = {}
  for segment in capture.segments(crop_size, segment_frames, shown):
    for f in shown:
      if segment.start <= f < segment.stop:
        # Each network camera's masked crop, from the first pair that has it.
        views = {}
        for pair, clip in zip(capture.pairs, segment.clips.values()):
          for v, camera in enumerate(pair):
            views.setdefault(camera, clip['crops'][v, f - segment.start]
                             * clip['masks'][v, f - segment.start, ..., None])
        inputs[f] = [views[camera] for camera in capture.network_cameras]
    for pair, clip in segment.clips.items():
      t0 = time.perf_counter()
      pred = predictor.predict_clip(clip)
      t_net += time.perf_counter() - t0
      coords[pair].append(capture.world_coordinates(skel, pred['coordinates']))
      scales.append(pred['frame_scales'])
  per_pair = {pair: np.concatenate(c) for pair, c in coords.items()}
  coordinates = average_coordinates(skel, list(per_pair.values()))
  frame_scales = np.concatenate(scales)  # (pairs x frames, B, 3)
  capture.report['timings_s']['network'] = t_net
  arrays = {'frame_scales': frame_scales}
  if len(pairs) > 1:
    capture.report['pair_average'] = ('the coordinates are the mean of the pairs\' '
                                      '(circular for angles); predictions.npz: pair_coordinates')
    arrays['pair_coordinates'] = np.stack(list(per_pair.values()))  # (P, T, C)
  return write_capture_outputs(
      capture, skel, coordinates, frame_scales.mean(axis=0), out_dir, name=name,
      method='banet', translation='landmarks' if place_body else 'zero',
      network_inputs=inputs, arrays=arrays, curve_label='BANet',
      title=f'{name}: {", ".join(pairs)}', cutoff_hz=cutoff_hz)


def write_capture_outputs(capture, skel, coordinates, scales, out_dir, *, name: str,
                          method: str, translation: str = 'landmarks', points=None,
                          network_inputs: dict | None = None, arrays: dict | None = None,
                          world_arrays: dict | None = None, curve_label: str | None = None,
                          title: str | None = None, highlight: Sequence[str] | None = None,
                          cutoff_hz: float | None = None) -> dict:
  """Everything after a method has its coordinates: floor, placement, files, report.

  Shared by BANet (`predict_capture`) and the keypoint method
  (`keypoints.keypoints_capture`), so both write the same files (module docstring).

  Args:
    capture: the processed `pipeline.Capture` (landmarks, thumbnails and `report` filled;
      the report is completed here and returned).
    skel: the model the coordinates refer to (its `source` is exported).
    coordinates: (T, C) rad / m in `skel.coordinate_names` order.
    scales: (B, 3) body scale factors (one set for the clip).
    out_dir: output folder (written through a staging folder; see the module docstring).
    name: stem of the .mot / .trc / .osim files.
    method: written as report['method'] ('banet', 'keypoints').
    translation: where the pelvis translation comes from. 'landmarks': placed on the
      triangulated landmarks (`placement.pelvis_translation`; the coordinates' own are
      ignored); 'zero': left as given (BANet predicts 0); 'solved': the coordinates
      already hold it, in the calibration's world (the keypoint method's IK), and only
      the floor shift below is applied to pelvis_ty.
    points: (T, 33, 3) the capture's triangulated landmarks in the calibration's world
      (None: `capture.triangulate()`).
    network_inputs: {frame: [(S, S, 3) masked crop per network camera]} ->
      network_inputs.png; None: no such picture (a method without network inputs).
    arrays: more arrays for predictions.npz.
    world_arrays: more (..., 3) world points (m) for predictions.npz, given in the
      calibration's world and saved, like world_landmarks, in the floor's.
    curve_label, title: legend and title of angles.png (default: method, name).
    highlight: cameras marked '(network)' in the overlays (default: the capture's
      network cameras).
    cutoff_hz: when set (> 0), the coordinates are low-passed after placement
      (`filtering.filter_coordinates`) and the unfiltered ones saved in predictions.npz
      as `raw_coordinates`; report['coordinate_filter'] says so. None: written as given
      (the keypoint method, whose landmarks are filtered before its IK).

  World: y = 0 is the floor in every output. Without a known floor
  (`calibration.floor_known` False) it is estimated from the feet
  (`placement.estimate_floor`) and the world shifted down by it; the overlays shift back.
  """
  if translation not in ('landmarks', 'zero', 'solved'):
    raise ValueError(f"translation must be 'landmarks', 'zero' or 'solved', got {translation!r}")
  out_dir = pathlib.Path(out_dir)
  coordinates = np.array(coordinates, np.float64)
  scales = np.asarray(scales, np.float64)
  report = capture.report
  report['method'] = method
  t0 = time.perf_counter()
  points = capture.triangulate()[0] if points is None else np.array(points, np.float64)
  if not capture.calibration.floor_known:
    floor = placement.estimate_floor(points)
    report['floor'] = {'source': 'feet', 'height_m': floor,
                       'note': 'the calibration has no floor: y = 0 is set at the lowest '
                               'heel/toe landmark (2nd percentile over frames)'}
    points[..., 1] -= floor
  else:
    floor = 0.0
    report['floor'] = {'source': 'calibration', 'height_m': 0.0}
  if translation == 'landmarks':
    translation_m, residual = placement.pelvis_translation(skel, coordinates, scales, points)
    coordinates = placement.place(skel, coordinates, translation_m)
    report['placement'] = {'method': 'landmarks',
                           'median_residual_m': float(np.nanmedian(residual)),
                           'frames_without_landmarks': int(np.isnan(residual).sum())}
  elif translation == 'zero':
    report['placement'] = {'method': 'none (pelvis translation 0)'}
  else:  # 'solved'
    # The ground-to-pelvis translations are along the ground's axes: moving the world
    # down by `floor` moves the body's y translation by the same amount.
    coordinates[:, placement.global_translation_indices(skel)[1]] -= floor
    report['placement'] = {'method': 'inverse kinematics (the pelvis translation is '
                                     'solved with the pose)'}
  report['timings_s']['placement'] = time.perf_counter() - t0
  raw = {}
  if cutoff_hz:
    raw['raw_coordinates'] = coordinates
    coordinates = filtering.filter_coordinates(skel, coordinates, capture.fps, cutoff_hz)
    report['coordinate_filter'] = {'type': 'butterworth, zero lag (sosfiltfilt)',
                                   'cutoff_hz': float(cutoff_hz),
                                   'order': filtering.FILTER_ORDER}
  else:
    report['coordinate_filter'] = None

  staging = pathlib.Path(tempfile.mkdtemp(prefix='.partial-', dir=out_dir.parent
                                          if out_dir.parent.exists() else None))
  try:
    t0 = time.perf_counter()
    files = export.export_clip(staging, name, coordinates, scales, capture.fps,
                               model_path=skel.source)
    report['timings_s']['export'] = time.perf_counter() - t0
    fk = forward_kinematics(skel, coordinates,
                            np.broadcast_to(scales, coordinates.shape[:1] + scales.shape))
    joints = np.asarray(fk.joint_centers, np.float64)
    joints[..., 1] += floor  # back into the calibration's world for projection
    files['overlays'] = overlay_sheets(capture, joints, skeleton_edges(skel), staging,
                                       highlight=highlight)
    if network_inputs is not None:
      files['network_inputs'] = network_inputs_sheet(capture, network_inputs, staging)
    names = [n for n in CURVE_COORDINATES if n in skel.coordinate_names]
    times = np.arange(len(coordinates)) / capture.fps
    files['angles'] = str(evaluation.plot_angle_curves(
        staging / 'angles.png', times, skel.coordinate_names, None,
        {curve_label or method: coordinates}, names, title=title or name))
    np.savez(staging / 'predictions.npz', coordinates=coordinates, scales=scales,
             coordinate_names=np.array(skel.coordinate_names),
             landmarks=capture.landmarks, visibility=capture.visibility,
             world_landmarks=points, cameras=np.array(capture.names), **(arrays or {}),
             **raw,
             **{k: np.asarray(v, np.float64) - [0.0, floor, 0.0]
                for k, v in (world_arrays or {}).items()})
    report['timings_s']['per_frame'] = {k: v / capture.num_frames
                                        for k, v in report['timings_s'].items()
                                        if isinstance(v, float)}
    out_dir.mkdir(parents=True, exist_ok=True)
    moved = {}
    for path in sorted(staging.iterdir()):
      target = out_dir / path.name
      if target.is_dir():
        shutil.rmtree(target)
      shutil.move(str(path), target)
      moved[str(path)] = str(target)
    report['files'] = {k: ([moved[p] for p in v] if isinstance(v, list) else moved[v])
                       for k, v in files.items()}
    (out_dir / 'report.json').write_text(json.dumps(report, indent=1))
  finally:
    shutil.rmtree(staging, ignore_errors=True)
  return report
