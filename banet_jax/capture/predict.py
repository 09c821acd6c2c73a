"""A real capture through BANet to OpenSim files, pictures and a report.

`predict_capture(predictor, capture, out_dir)` writes into `out_dir`:
  <name>.mot / .trc / .osim   the coordinates (pelvis placed where the person stands,
                              `placement`), the scaled model's markers, the scaled model
  overlay_<camera>.png        a contact sheet per camera: the predicted skeleton (joint
                              centres and bones, projected with the lens model) over frames
                              of every view, the BlazePose landmarks as small dots
  overlays.png                all cameras side by side (rows: frames)
  network_inputs.png          what BANet saw at those frames: the two masked crops
  angles.png                  the main coordinates over time
  report.json                 cameras, person choice, floor, placement residuals, timings
  predictions.npz             raw arrays: coordinates (T, C), scales (B, 3), landmarks
                              (C, T, 33, 2) in pixels as the cameras see them (distorted),
                              visibility (C, T, 33), world landmarks (T, 33, 3)
Everything is written into a staging folder first and moved into `out_dir` at the end,
so a failure leaves nothing half-written.
"""

from __future__ import annotations

import json
import pathlib
import shutil
import tempfile
import time

import cv2
import numpy as np

from banet_jax import evaluation, export
from banet_jax.capture import placement
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


def overlay_sheets(capture, joints_world: np.ndarray, edges, out_dir: pathlib.Path
                   ) -> list[str]:
  """Contact sheets of `capture.thumbnails` with joints (T, J, 3) world projected."""
  frames = sorted(capture.thumbnails)
  columns = []
  for c, (name, cam) in enumerate(zip(capture.names, capture.calibration.cameras)):
    tiles = []
    for f in frames:
      thumb = capture.thumbnails[f][c]
      s = thumb.shape[1] / cam.size[0]
      joints = cam.project(joints_world[f]) * s
      marks = np.where(capture.visibility[c, f, :, None] >= 0.5, capture.landmarks[c, f], np.nan)
      used = ' (network)' if name in capture.network_cameras else ''
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
  """The masked crops {frame: (2, S, S, 3)} as a grid (rows: frames, columns: views)."""
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


def predict_capture(predictor, capture, out_dir, *, name: str = 'capture',
                    segment_frames: int = 256, overlay_count: int = 6,
                    place_body: bool = True) -> dict:
  """Runs `capture` (a `pipeline.Capture`) through `predictor` and writes the outputs.

  Returns the report (also written as report.json), with the output paths under 'files'.
  """
  out_dir = pathlib.Path(out_dir)
  skel = predictor.layout.skeleton
  crop_size = predictor.net.config.image_size
  coords, scales, t_net = [], [], 0.0
  shown = thumbnail_frames(capture.num_frames, overlay_count)
  inputs = {}
  for segment in capture.segments(crop_size, segment_frames, shown):
    for f in shown:
      if segment.start <= f < segment.stop:
        clip = segment.clip
        inputs[f] = clip['crops'][:, f - segment.start] * clip['masks'][:, f - segment.start,
                                                                      ..., None]
    t0 = time.perf_counter()
    pred = predictor.predict_clip(segment.clip)
    t_net += time.perf_counter() - t0
    coords.append(pred['coordinates'])
    scales.append(pred['frame_scales'])
  coordinates = np.concatenate(coords)
  frame_scales = np.concatenate(scales)
  body_scales = frame_scales.mean(axis=0)
  report = capture.report
  report['timings_s']['network'] = t_net

  t0 = time.perf_counter()
  points, _ = capture.triangulate()
  if not capture.calibration.floor_known:
    floor = placement.estimate_floor(points)
    report['floor'] = {'source': 'feet', 'height_m': floor,
                       'note': 'the calibration has no floor: y = 0 is set at the lowest '
                               'heel/toe landmark (2nd percentile over frames)'}
    points[..., 1] -= floor
  else:
    floor = 0.0
    report['floor'] = {'source': 'calibration', 'height_m': 0.0}
  if place_body:
    translation, residual = placement.pelvis_translation(skel, coordinates, body_scales, points)
    coordinates = placement.place(skel, coordinates, translation)
    report['placement'] = {'method': 'landmarks',
                           'median_residual_m': float(np.nanmedian(residual)),
                           'frames_without_landmarks': int(np.isnan(residual).sum())}
  else:
    report['placement'] = {'method': 'none (pelvis translation 0)'}
  report['timings_s']['placement'] = time.perf_counter() - t0

  staging = pathlib.Path(tempfile.mkdtemp(prefix='.partial-', dir=out_dir.parent
                                          if out_dir.parent.exists() else None))
  try:
    t0 = time.perf_counter()
    files = export.export_clip(staging, name, coordinates, body_scales, capture.fps,
                               model_path=skel.source)
    report['timings_s']['export'] = time.perf_counter() - t0
    fk = forward_kinematics(skel, coordinates, np.broadcast_to(body_scales, frame_scales.shape))
    joints = np.asarray(fk.joint_centers, np.float64)
    joints[..., 1] += floor  # back into the calibration's world for projection
    files['overlays'] = overlay_sheets(capture, joints, skeleton_edges(skel), staging)
    files['network_inputs'] = network_inputs_sheet(capture, inputs, staging)
    names = [n for n in CURVE_COORDINATES if n in skel.coordinate_names]
    times = np.arange(len(coordinates)) / capture.fps
    files['angles'] = str(evaluation.plot_angle_curves(
        staging / 'angles.png', times, skel.coordinate_names, None, {'BANet': coordinates},
        names, title=f'{name}: {", ".join(capture.network_cameras)}'))
    np.savez(staging / 'predictions.npz', coordinates=coordinates, scales=body_scales,
             frame_scales=frame_scales, coordinate_names=np.array(skel.coordinate_names),
             landmarks=capture.landmarks, visibility=capture.visibility,
             world_landmarks=points, cameras=np.array(capture.names))
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
