r"""Models trained only on ODAH, on a real capture: the table of the sim-to-real issue.

    .venv/bin/python benchmarks/sim_to_real.py \
        --models=tiny_cpu=runs/main_stage2,shipped=default --out_dir=outputs/sim_to_real

The capture is Pose2Sim's demo trial (four calibrated cameras; a person balancing on one
leg). Both network pairs (cam01+cam04 and cam02+cam03, 114 and 121 degrees apart) are cut
once, at 128-px crops, with all four cameras' BlazePose landmarks; every model sees the
same crops (a 64-px model gets them resized, as ODAH 128-px crops are for it). Rows: the
mean pose of --baseline_dataset's training split, then each model. Columns:

  ref MAE     mean |model - keypoint reference| (deg) over the coordinates the reference
              determines well (its leave-one-camera-out spread below --max_spread_deg and
              on a range bound in under 20 % of frames; listed in the output), both pairs
              pooled. The reference is the classic
              four-camera method (`banet_jax.capture.keypoints`: BlazePose landmarks of
              all cameras triangulated, 6 Hz low-pass, scaled model, IK).
  pair diff   mean |cam01+cam04 - cam02+cam03| (deg) over the 12 joint coordinates of
              hips (3 each side), knees, ankles and elbows.
  reproj      median |projected joint centre - BlazePose landmark| / person height in
              the image, all four cameras, both pairs pooled (benchmarks/real_capture.py).
  jitter      mean |second difference| of those 12 coordinates (deg / frame^2), next to
              the reference's and ODAH ground truth's (--baseline_dataset test clips).
  net s/frame seconds of network per two-view frame on this machine (front end apart).
  track r     mean Pearson correlation of each well-determined coordinate's curve with
              the reference's, over the coordinates and both pairs (1: moves in step).
  range       mean ratio of the curve's standard deviation to the reference's over those
              coordinates (1: moves as much; near 0: stays near one pose).
A second table gives ref MAE per coordinate, a third r and range per coordinate.
curves.jpg draws --plot_coordinates of every model and pair against the reference.

--appearance adds rows that feed every model the same real crops with their pixels
changed inside the mask (the mask, crop boxes and query points stay), to measure how much
of the gap is the person's appearance:
  real        the crops as cut (the default and the only variant the README table uses);
  grey        luminance in all three channels;
  silhouette  every mask pixel set to ODAH's mean person colour (--baseline_dataset's
              training crops): the network sees the two masks only;
  odah_stats  each view's mask pixels shifted and scaled per channel to ODAH's mean and
              standard deviation of person pixels.

--pair_average adds, per model, the row 'NAME [pairs averaged]': the predictions of all
--pairs averaged per frame (`capture.predict.average_coordinates`: circular means of the
angles), placed again, as `launch.predict --cameras=cam01+cam04,cam02+cam03` writes them;
its pair diff is '-' and its other columns are the average's.

--cutoff_hz gives each model one row per cutoff: 0 the coordinates as the network
predicts them (the row named after the model), a positive cutoff those coordinates
low-passed after placement as `launch.predict --videos` writes them
(`banet_jax.filtering.filter_coordinates`, zero-lag Butterworth; the row 'NAME [6 Hz]').

The mean pose takes the reference's pelvis orientation (so the pelvis is left out of ref
MAE) and is placed like the models.
"""

from __future__ import annotations

import json
import pathlib
import sys
import time

from absl import app, flags, logging
import numpy as np

if __package__ in (None, ''):
  sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))

_MODELS = flags.DEFINE_list('models', ['shipped=default'], 'NAME=CHECKPOINT entries (a training '
                            "workdir, checkpoint folder or release; 'default' = the shipped "
                            'model).')
_OUT_DIR = flags.DEFINE_string('out_dir', 'outputs/sim_to_real', 'Output folder.')
_NUM_FRAMES = flags.DEFINE_integer('num_frames', 0, 'Frames of the trial (0: all).')
_PAIRS = flags.DEFINE_list('pairs', ['cam01+cam04', 'cam02+cam03'], 'Network camera pairs.')
_CROP = flags.DEFINE_integer('crop_size', 128, 'Crop size the pairs are cut at.')
_BASELINE = flags.DEFINE_string('baseline_dataset', 'odah/lab', 'Mean pose and ground-truth '
                                'jitter from this ODAH dataset.')
_DATA_DIR = flags.DEFINE_string('data_dir', None, 'TFDS data directory.')
_APPEARANCE = flags.DEFINE_list('appearance', ['real'], 'Pixel variants of the real crops '
                                'fed to every model (module docstring): real, grey, '
                                'silhouette, odah_stats.')
_FACE_FORWARD = flags.DEFINE_bool('face_forward', True, "Turn each clip's frame so the person "
                                   'faces +x as in ODAH (pipeline.Capture; --noface_forward: '
                                   "the calibration's own heading, as before 2026-12-07).")
_AIM = flags.DEFINE_bool('aim_cameras', True, 'Cut the crops from each network camera turned '
                         'to look at the person with a level image x axis, as ODAH aims its '
                         'cameras (pipeline.Capture; --noaim_cameras: the cameras as mounted, '
                         'as before 2026-12-07, seventh session).')
_PLOT = flags.DEFINE_list('plot_coordinates', ['knee_angle_r', 'knee_angle_l', 'elbow_flex_r'],
                          'Coordinates drawn in curves.jpg (every model, every pair, against '
                          'the reference); empty: no picture.')
_CUTOFFS = flags.DEFINE_list('cutoff_hz', ['0', '6'], 'Low-pass cutoffs (Hz) of the models\' '
                             'coordinates, one row each (0: unfiltered; 6: what launch.predict '
                             'writes by default).')
_PAIR_AVERAGE = flags.DEFINE_bool('pair_average', True, 'Also a row per model with the '
                                   "predictions of all --pairs averaged ('NAME [pairs "
                                   "averaged]'; launch.predict --cameras=A+B,C+D).")
_MAX_SPREAD = flags.DEFINE_float('max_spread_deg', 5.0, 'A coordinate is well determined by '
                                 'the reference when its leave-one-camera-out spread is below.')

JOINT_COORDINATES = ('hip_flexion_r', 'hip_adduction_r', 'hip_rotation_r', 'hip_flexion_l',
                     'hip_adduction_l', 'hip_rotation_l', 'knee_angle_r', 'knee_angle_l',
                     'ankle_angle_r', 'ankle_angle_l', 'elbow_flex_r', 'elbow_flex_l')


def _table(header, rows) -> str:
  lines = ['| ' + ' | '.join(header) + ' |', '|' + '---|' * len(header)]
  lines += ['| ' + ' | '.join(str(c) for c in row) + ' |' for row in rows]
  return '\n'.join(lines)


def angle_diff_deg(a, b) -> np.ndarray:
  """|a - b| in degrees, wrapped to [0, 180] (inputs in radians)."""
  return np.degrees(np.abs(np.angle(np.exp(1j * (np.asarray(a) - np.asarray(b))))))


def jitter_deg(q, idx) -> float:
  """Mean |second difference| (deg / frame^2) of coordinates `idx` of q (T, C) radians."""
  q = np.degrees(np.asarray(q, np.float64)[:, idx])
  return float(np.nanmean(np.abs(np.diff(q, n=2, axis=0)))) if len(q) > 2 else float('nan')


def tracking(q, ref_q, i) -> tuple[float, float]:
  """(Pearson r, std ratio) of coordinate i of q against the reference over the frames:
  does the curve move with the reference's, and by how much (1: as much). r is nan for a
  curve that does not move."""
  from banet_jax import evaluation  # pylint: disable=g-import-not-at-top  (the BANet stack: not for --help)
  r, ratio = evaluation.series_tracking(np.asarray(q)[:, i], np.asarray(ref_q)[:, i])
  return (float('nan') if r is None else r), (float('nan') if ratio is None else ratio)


APPEARANCES = ('real', 'grey', 'silhouette', 'odah_stats')


def person_pixel_stats(source, max_clips: int = 16) -> tuple[np.ndarray, np.ndarray]:
  """(mean (3,), std (3,)) of the RGB values (0-255) inside the masks of up to `max_clips`
  clips of an ODAH source, evenly spaced over it."""
  picks = np.unique(np.linspace(0, len(source) - 1, min(max_clips, len(source))).astype(int))
  pixels = []
  for i in picks:
    clip = source[int(i)]
    crops, masks = np.asarray(clip['crops']), np.asarray(clip['masks']) != 0
    pixels.append(crops[masks][::7].astype(np.float64))  # every 7th person pixel is plenty
  pixels = np.concatenate(pixels)
  return pixels.mean(axis=0), pixels.std(axis=0)


def change_appearance(crops, masks, variant: str, stats) -> np.ndarray:
  """crops (..., S, S, 3) uint8, masks (..., S, S) -> crops with the person pixels of
  `variant` (APPEARANCES; `stats` = person_pixel_stats of ODAH); pixels off the mask are
  kept (the network zeroes them anyway). Per view and frame for odah_stats."""
  if variant not in APPEARANCES:
    raise ValueError(f'--appearance: unknown variant {variant!r}; choose from {APPEARANCES}')
  crops = np.asarray(crops)
  if variant == 'real':
    return crops
  inside = (np.asarray(masks) != 0)[..., None]
  x = crops.astype(np.float64)
  mean, std = (np.asarray(v, np.float64) for v in stats)
  if variant == 'grey':
    y = np.repeat((x @ np.array([0.299, 0.587, 0.114]))[..., None], 3, axis=-1)
  elif variant == 'silhouette':
    y = np.broadcast_to(mean, x.shape)
  else:  # odah_stats: per (view, frame) image
    axes = (-3, -2)
    n = np.maximum(inside.sum(axis=axes, keepdims=True), 1)
    m = (x * inside).sum(axis=axes, keepdims=True) / n
    s = np.sqrt((((x - m) * inside) ** 2).sum(axis=axes, keepdims=True) / n)
    y = (x - m) / np.maximum(s, 1.0) * std + mean
  y = np.where(inside, np.clip(np.rint(y), 0, 255), x)
  return y.astype(np.uint8)


# The body's angles for the pose-coverage line: every coordinate the reference's IK moves
# with the limbs and trunk (hands, wrists and pelvis heading left out).
COVERAGE_COORDINATES = JOINT_COORDINATES + (
    'lumbar_extension', 'lumbar_bending', 'lumbar_rotation', 'arm_flex_r', 'arm_add_r',
    'arm_rot_r', 'arm_flex_l', 'arm_add_l', 'arm_rot_l', 'pelvis_tilt', 'pelvis_list')


def nearest_pose_deg(queries, poses, block: int = 64) -> np.ndarray:
  """(Q,) for each query pose (Q, K) radians: the smallest mean |difference| (deg) to any
  of `poses` (N, K)."""
  out = []
  for start in range(0, len(queries), block):
    diff = np.abs(queries[start:start + block, None] - poses[None]).mean(-1)
    out.append(diff.min(axis=1))
  return np.degrees(np.concatenate(out)) if out else np.zeros(0)


def plot_pair_curves(path, fps: float, coordinate_names, reference, per_model, names) -> None:
  """One panel per (model, coordinate): the reference's curve (black) and one curve per
  camera pair, in degrees over seconds. per_model: {model: {pair: (T, C) radians}}."""
  import matplotlib  # pylint: disable=g-import-not-at-top  (only when plotting)
  matplotlib.use('Agg')
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
  from PIL import Image  # pylint: disable=g-import-not-at-top
  times = np.arange(len(reference)) / fps
  fig, axes = plt.subplots(len(per_model), len(names), squeeze=False, sharex=True,
                           figsize=(4.3 * len(names), 2.5 * len(per_model)))
  for row, (model, pairs) in zip(axes, per_model.items()):
    for ax, name in zip(row, names):
      i = list(coordinate_names).index(name)
      ax.plot(times, np.degrees(reference[:, i]), 'k-', lw=2.5, label='four-camera reference')
      for pair, q in pairs.items():
        ax.plot(times, np.degrees(q[:, i]), '-', lw=1, label=pair)
      ax.set_title(f'{model}: {name}', fontsize=9)
      ax.grid(alpha=0.3)
  for ax in axes[:, 0]:
    ax.set_ylabel('deg', fontsize=8)
  for ax in axes[-1]:
    ax.set_xlabel('s', fontsize=8)
  axes[0, -1].legend(fontsize=7)
  fig.tight_layout()
  png = pathlib.Path(path).with_suffix('.png')
  fig.savefig(png, dpi=80)
  plt.close(fig)
  Image.open(png).convert('RGB').save(path, quality=80)  # a JPEG a tenth the size
  png.unlink()


def cut_pair(videos, calib, pair, num_frames, crop_size, pose, face_forward=True,
             aim_cameras=True):
  """(capture, clip) of one network pair: the whole trial cut once (crops at crop_size)."""
  from banet_jax.capture import pipeline  # pylint: disable=g-import-not-at-top
  capture = pipeline.open_capture(videos, calib, pair, num_frames=num_frames, pose=pose,
                                  face_forward=face_forward, aim_cameras=aim_cameras,
                                  progress=False)
  parts = [segment.clip for segment in capture.segments(crop_size, segment_frames=128)]
  clip = {k: (np.concatenate([p[k] for p in parts], axis=1)
              if k in ('crops', 'masks', 'crop_meta') else parts[0][k]) for k in parts[0]}
  return capture, clip


def main(argv):
  del argv
  logging.set_verbosity(logging.WARNING)
  # pylint: disable=g-import-not-at-top
  from banet_jax import data, evaluation, filtering
  from banet_jax.capture import calibration, demo, keypoints, persons, placement, predict
  from banet_jax.inference import Predictor
  from banet_jax.model.banet import layout_for
  from banet_jax.skeleton import load_osim
  from banet_jax.skeleton.models import DEFAULT_MODEL_PATH
  from benchmarks import _common
  # pylint: enable=g-import-not-at-top
  print(_common.platform_info())
  unknown = sorted(set(_APPEARANCE.value) - set(APPEARANCES))
  if unknown:
    raise app.UsageError(f'--appearance: unknown variants {unknown}; choose from {APPEARANCES}')
  out_dir = pathlib.Path(_OUT_DIR.value)
  out_dir.mkdir(parents=True, exist_ok=True)
  folder = demo.demo_capture_dir('Demo_SinglePerson')
  videos = [str(folder / 'videos' / f'cam0{i}.mp4') for i in range(1, 5)]
  calib = calibration.load_calibration(folder / 'calibration' / 'Calib.qca.txt')
  skel = load_osim(DEFAULT_MODEL_PATH)
  idx = [skel.coordinate_index(n) for n in JOINT_COORDINATES]
  unknown = sorted(set(_PLOT.value) - set(skel.coordinate_names))
  if unknown:
    raise app.UsageError(f'--plot_coordinates: {unknown} are not coordinates of the project '
                         f'model; choose from {list(skel.coordinate_names)}')
  cutoffs = [float(c) for c in _CUTOFFS.value]
  if any(c < 0 for c in cutoffs):
    raise app.UsageError(f'--cutoff_hz: cutoffs are >= 0 Hz (0: unfiltered), got {cutoffs}')
  pose = persons.BlazePose()
  num_frames = _NUM_FRAMES.value or None

  t0 = time.perf_counter()
  cuts = {p: cut_pair(videos, calib, tuple(p.split('+')), num_frames, _CROP.value, pose,
                     _FACE_FORWARD.value, _AIM.value) for p in _PAIRS.value}
  front_s = (time.perf_counter() - t0) / sum(c.num_frames for c, _ in cuts.values())
  capture = next(iter(cuts.values()))[0]
  fps = capture.fps
  points, _ = capture.triangulate()  # (T, 33, 3), all four cameras
  print(f'capture: {folder.name}, {capture.num_frames} frames at {fps:g} fps; front end '
        f'{front_s:.2f} s per frame (4 cameras, BlazePose, crops); clip heading '
        + ', '.join(f'{p} {c.clip_heading_deg():.1f} deg' for p, (c, _) in cuts.items()))
  aimed = {}
  for c, _ in cuts.values():
    aimed.update(c.report['aimed_cameras'])
  print('world vertical at the person, lean in each camera (deg): '
        + ', '.join(f"{n} {a['vertical_lean_deg']:+.1f}" for n, a in sorted(aimed.items())
                    if a['vertical_lean_deg'] is not None)
        + ('; cameras aimed at the person, turned by '
           + ', '.join(f"{n} {a['turned_by_deg']:.1f}" for n, a in sorted(aimed.items()))
           if _AIM.value else '; cameras as mounted (--noaim_cameras)') + '\n')

  # The reference and what it determines well: coordinates that move by less than
  # --max_spread_deg when a camera is left out, and are not held on a range bound.
  subsets = keypoints.camera_subset_spread(skel, capture.landmarks, capture.visibility,
                                           capture.calibration.cameras, fps,
                                           names=capture.names)
  reference = subsets['reference']
  spread, at_bounds = subsets['mean_abs_diff'], subsets['at_bounds']
  # Not the pelvis orientation: the mean-pose row takes the reference's.
  candidates = JOINT_COORDINATES + ('lumbar_extension', 'lumbar_bending', 'arm_flex_r',
                                    'arm_flex_l', 'arm_add_r', 'arm_add_l')
  well = [n for n in candidates if spread[n] < _MAX_SPREAD.value and at_bounds[n] < 0.2]
  well_idx = [skel.coordinate_index(n) for n in well]
  print(f'keypoint reference: well determined (leave-one-camera-out spread < '
        f'{_MAX_SPREAD.value:g} deg): {", ".join(f"{n} {spread[n]:.1f}" for n in well)}')
  print('not well determined: ' + ', '.join(
      f'{n} {spread[n]:.1f}' + (f' (on a bound {at_bounds[n]:.0%})' if at_bounds[n] >= 0.2 else '')
      for n in candidates if n not in well) + '\n')

  # The mean pose and ODAH ground-truth jitter.
  train = data.open_source(_BASELINE.value, 'train', _DATA_DIR.value)
  q_train = np.concatenate([np.asarray(train[i]['coordinates']) for i in range(len(train))])
  s_train = np.stack([np.asarray(train[i]['scales']) for i in range(len(train))])
  mean_q, mean_s = evaluation.mean_pose(layout_for(DEFAULT_MODEL_PATH), q_train, s_train)
  test = data.open_source(_BASELINE.value, 'test', _DATA_DIR.value)
  gt_jitter = float(np.mean([jitter_deg(np.asarray(test[i]['coordinates']), idx)
                             for i in range(len(test))]))

  stats = person_pixel_stats(train)
  print(f'ODAH person pixels ({_BASELINE.value} train): mean {np.round(stats[0], 1)}, '
        f'std {np.round(stats[1], 1)} (RGB 0-255)')

  # Pose coverage: how far each frame of the reference is from the nearest ODAH training
  # frame (mean |difference| over the body's angles), next to the same for ODAH test frames.
  # The reference is turned into the clip's frame (the person facing +x, as the networks
  # see it and as ODAH's subjects stand): in the calibration's world, where the person
  # faces -99 deg, pelvis tilt and list swap roles.
  cover = [skel.coordinate_index(n) for n in COVERAGE_COORDINATES]
  q_test = np.concatenate([np.asarray(test[i]['coordinates']) for i in range(len(test))])
  ref_facing = placement.turn_about_vertical(skel, np.asarray(reference.coordinates),
                                             -np.radians(capture.clip_heading_deg()))
  ref_near = nearest_pose_deg(ref_facing[:, cover], q_train[:, cover])
  test_near = nearest_pose_deg(q_test[::4, cover], q_train[:, cover])
  print(f'pose coverage: nearest {_BASELINE.value} training frame, mean |difference| over '
        f'{len(cover)} angles: the reference\'s frames median {np.median(ref_near):.1f} deg '
        f'(90th percentile {np.percentile(ref_near, 90):.1f}); its test frames '
        f'{np.median(test_near):.1f} ({np.percentile(test_near, 90):.1f})')
  outside = []
  for n, i in zip(COVERAGE_COORDINATES, cover):
    lo, hi = np.degrees(np.percentile(ref_facing[:, i], [5, 95]))
    tlo, thi = np.degrees(np.percentile(q_train[:, i], [1, 99]))
    if lo < tlo - 5 or hi > thi + 5:
      outside.append(f'{n} {lo:.0f}..{hi:.0f} (ODAH {tlo:.0f}..{thi:.0f})')
  print('reference 5-95 % range beyond ODAH training\'s 1-99 % by over 5 deg: '
        + (', '.join(outside) or 'none') + '\n')

  results = {}
  ref_q = np.asarray(reference.coordinates)
  pelvis = [skel.coordinate_index(n) for n in ('pelvis_tilt', 'pelvis_list', 'pelvis_rotation')]
  base = np.broadcast_to(mean_q, ref_q.shape).copy()
  base[:, pelvis] = ref_q[:, pelvis]
  translation, _ = placement.pelvis_translation(skel, base, mean_s, points)
  base = placement.place(skel, base, translation)
  results['mean pose'] = {'per_pair': {p: (base, mean_s) for p in cuts}, 'net_s': float('nan')}
  for entry in _MODELS.value:
    name, _, path = entry.partition('=')
    predictor = Predictor.restore(path)
    for variant in _APPEARANCE.value:
      per_pair, net = {}, 0.0
      for pair, (cap, clip) in cuts.items():
        clip = dict(clip, crops=change_appearance(clip['crops'], clip['masks'], variant, stats))
        t1 = time.perf_counter()
        pred = predictor.predict_clip(clip)
        net += time.perf_counter() - t1
        q, s = cap.world_coordinates(skel, pred['coordinates']), pred['scales']
        translation, _ = placement.pelvis_translation(skel, q, s, points)
        per_pair[pair] = (placement.place(skel, q, translation), s)
      row = name if variant == 'real' else f'{name} [{variant}]'
      rows_of_model = {row: per_pair}
      if _PAIR_AVERAGE.value and len(per_pair) > 1:
        # Every pair's prediction averaged (launch.predict --cameras=A+B,C+D), placed again.
        q = predict.average_coordinates(skel, [q for q, _ in per_pair.values()])
        s = np.mean([s for _, s in per_pair.values()], axis=0)
        translation, _ = placement.pelvis_translation(skel, q, s, points)
        rows_of_model[f'{row} [pairs averaged]'] = {
            p: (placement.place(skel, q, translation), s) for p in per_pair}
      for label, per in rows_of_model.items():
        for cutoff in cutoffs:
          results[label + (f' [{cutoff:g} Hz]' if cutoff else '')] = {
              'per_pair': {p: ((filtering.filter_coordinates(skel, q, fps, cutoff) if cutoff
                                else q), s) for p, (q, s) in per.items()},
              # Per two-view frame; an average's per output frame (every pair's).
              'net_s': net / (capture.num_frames if label != row else
                              sum(c.num_frames for c, _ in cuts.values())),
              'crop': predictor.net.config.image_size, 'averaged': label != row}

  rows, summary = [], {}
  seen = (capture.landmarks, capture.visibility, capture.calibration)
  pairs = list(cuts)
  for name, r in results.items():
    qs = [r['per_pair'][p][0] for p in pairs]
    ref_mae = float(np.mean([angle_diff_deg(q[:, well_idx], ref_q[:, well_idx]).mean()
                             for q in qs]))
    pair_diff = float(angle_diff_deg(qs[0][:, idx], qs[1][:, idx]).mean()) if len(qs) > 1 else 0.0
    reproj = float(np.mean([placement.joint_reprojection(skel, q, s, *seen)
                            for q, s in r['per_pair'].values()]))
    jit = float(np.mean([jitter_deg(q, idx) for q in qs]))
    track = {n: np.nanmean([tracking(q, ref_q, skel.coordinate_index(n)) for q in qs], axis=0)
             for n in well}
    track_r = float(np.nanmean([t[0] for t in track.values()]))
    track_range = float(np.nanmean([t[1] for t in track.values()]))
    summary[name] = {'ref_mae_deg': ref_mae, 'pair_diff_deg': pair_diff, 'reprojection': reproj,
                     'jitter_deg_per_frame2': jit, 'net_s_per_frame': r['net_s'],
                     'track_r': track_r, 'track_range': track_range,
                     'tracking_per_coordinate': {n: {'r': float(t[0]), 'range': float(t[1])}
                                                 for n, t in track.items()},
                     'ref_mae_per_coordinate_deg': {
                         n: float(np.mean([angle_diff_deg(q[:, skel.coordinate_index(n)],
                                                          ref_q[:, skel.coordinate_index(n)]).mean()
                                           for q in qs])) for n in well}}
    rows.append((name, f'{ref_mae:.1f}',
                 '-' if name == 'mean pose' or r.get('averaged') else f'{pair_diff:.1f}',
                 f'{reproj:.3f}', f'{jit:.2f}',
                 '-' if name == 'mean pose' else f'{r["net_s"]:.3f}',
                 '-' if np.isnan(track_r) else f'{track_r:.2f}', f'{track_range:.2f}'))
  ref_reproj = placement.joint_reprojection(skel, ref_q, np.asarray(reference.scales), *seen)
  rows.append(('keypoint reference (4 cameras)', '0', '-', f'{ref_reproj:.3f}',
               f'{jitter_deg(ref_q, idx):.2f}', '-', '1', '1'))
  print(f'## Real capture ({capture.num_frames} frames; pairs {", ".join(pairs)})\n')
  print(_table(['model', 'ref MAE (deg)', 'pair diff (deg)', 'reproj (/height)',
                'jitter (deg/frame^2)', 'net s/frame', 'track r', 'range'], rows))
  print(f'\nODAH ground truth jitter ({_BASELINE.value} test, same 12 coordinates): '
        f'{gt_jitter:.2f} deg/frame^2')
  print('\nper-coordinate MAE against the reference (deg):\n')
  print(_table(['model'] + well, [(n, *(f'{s["ref_mae_per_coordinate_deg"][c]:.1f}' for c in well))
                                  for n, s in summary.items()]))
  print('\nper-coordinate tracking of the reference (Pearson r / std ratio):\n')
  print(_table(['model'] + well, [
      (n, *(f'{s["tracking_per_coordinate"][c]["r"]:.2f} / {s["tracking_per_coordinate"][c]["range"]:.2f}'
            for c in well)) for n, s in summary.items() if n != 'mean pose']))
  # How much of the reprojection error is the body's orientation: each model's pelvis
  # orientation against the reference's, and its reprojection with the reference's put in.
  # The angles are compared in the clip's frame (the person facing +x): tilt and list are
  # then the body's forward and sideways tilt, as in ODAH's labels.
  pelvis_rows = []

  def facing(q, pair):
    return placement.turn_about_vertical(skel, q, -np.radians(cuts[pair][0].clip_heading_deg()))

  for name, r in results.items():
    if name == 'mean pose':
      continue
    errors = [float(np.mean([angle_diff_deg(facing(r['per_pair'][p][0], p)[:, i],
                                            facing(ref_q, p)[:, i]).mean() for p in pairs]))
              for i in pelvis]
    swapped = []
    for q, s in r['per_pair'].values():
      q = q.copy()
      q[:, pelvis] = ref_q[:, pelvis]
      translation, _ = placement.pelvis_translation(skel, q, s, points)
      swapped.append(placement.joint_reprojection(skel, placement.place(skel, q, translation),
                                                  s, *seen))
    summary[name]['pelvis_orientation_error_deg'] = dict(zip(
        ('pelvis_tilt', 'pelvis_list', 'pelvis_rotation'), errors))
    summary[name]['reprojection_with_reference_pelvis'] = float(np.mean(swapped))
    pelvis_rows.append((name, *(f'{e:.1f}' for e in errors), f'{summary[name]["reprojection"]:.3f}',
                        f'{np.mean(swapped):.3f}'))
  print('\npelvis orientation against the reference, person facing +x (deg; its '
        'leave-one-camera-out spread in the world frame: '
        + ', '.join(f'{n} {spread[n]:.1f}' for n in ('pelvis_tilt', 'pelvis_list',
                                                     'pelvis_rotation') if n in spread)
        + ') and reprojection with the reference\'s pelvis orientation put in:\n')
  print(_table(['model', 'tilt', 'list', 'rotation', 'reproj', 'reproj, reference pelvis'],
               pelvis_rows))
  (out_dir / 'sim_to_real.json').write_text(json.dumps(
      {'models': dict(e.split('=', 1) for e in _MODELS.value), 'summary': summary,
       'well_determined': well, 'spread_deg': spread, 'at_bounds': at_bounds, 'gt_jitter': gt_jitter,
       'reference_reprojection': ref_reproj, 'front_end_s_per_frame': front_s,
       'pose_coverage_deg': {'reference_median': float(np.median(ref_near)),
                             'odah_test_median': float(np.median(test_near)),
                             'beyond_odah_range': outside},
       'frames': capture.num_frames}, indent=1))
  if _PLOT.value:
    plot_pair_curves(out_dir / 'curves.jpg', fps, skel.coordinate_names, ref_q,
                     {n: {p: q for p, (q, _) in r['per_pair'].items()}
                      for n, r in results.items() if n != 'mean pose'}, _PLOT.value)
  np.savez(out_dir / 'sim_to_real.npz', reference=ref_q, coordinate_names=np.array(
      skel.coordinate_names), **{f'{n}__{p}': r['per_pair'][p][0] for n, r in results.items()
                                 for p in pairs})


if __name__ == '__main__':
  app.run(main)
