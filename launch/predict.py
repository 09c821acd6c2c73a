r"""Predict OpenSim kinematics with a trained BANet and write the files OpenSim opens.

    # clips of a built ODAH split
    python -m launch.predict --checkpoint=/tmp/banet_tiny/stage2 --dataset=odah/tiny \
        --split=test --out_dir=/tmp/pred
    # your own calibrated videos (any number of cameras; --cameras picks the network's two,
    # the others are used for placement and overlays)
    python -m launch.predict --checkpoint=/tmp/banet_tiny/stage2 \
        --videos=cam01.mp4,cam02.mp4,cam03.mp4,cam04.mp4 --calibration=Calib.qca.txt \
        --cameras=cam01,cam04 --out_dir=/tmp/pred
    # the classic keypoint method instead of BANet (three or more videos, no checkpoint)
    python -m launch.predict --method=keypoints \
        --videos=cam01.mp4,cam02.mp4,cam03.mp4,cam04.mp4 --calibration=Calib.qca.txt \
        --out_dir=/tmp/kp
    # two-view frames already prepared: one .npz (format: banet_jax/inference.py docstring)
    python -m launch.predict --checkpoint=/tmp/banet_tiny/stage2 --input=trial.npz --out_dir=/tmp/pred

Per clip it writes <clip>.mot (coordinates, degrees), <clip>.osim (the model scaled by
OpenSim with the predicted body scales) and <clip>.trc (that model's markers), plus
predictions.npz with the raw arrays. With --videos, also overlay pictures of every camera,
angle curves and report.json (banet_jax/capture/predict.py), and the coordinates are
low-passed at --cutoff_hz (6 Hz) before they are written; --method=keypoints writes the
same files from the classic triangulate-filter-scale-IK method (banet_jax/capture/keypoints.py).
"""

from __future__ import annotations

import pathlib
import sys

from absl import app
from absl import flags
from absl import logging
import numpy as np

_METHOD = flags.DEFINE_enum(
    'method', 'banet', ['banet', 'keypoints'], 'banet: the trained network (--checkpoint, by '
    'default the shipped model). '
    'keypoints: the classic multi-camera method (Pose2Sim, OpenCap): BlazePose landmarks of '
    'all --videos (three or more) triangulated, low-pass filtered (--cutoff_hz), the model '
    'scaled and fitted by inverse kinematics (banet_jax/capture/keypoints.py); no network.')
_CHECKPOINT = flags.DEFINE_string('checkpoint', None, 'Training workdir, checkpoint folder or '
                                  'release (--method=banet; default: the shipped model, '
                                  'banet_jax/released, see MODEL_CARD.md).')
_INPUT = flags.DEFINE_string('input', None, 'A two-view .npz (instead of --dataset).')
_DATASET = flags.DEFINE_string('dataset', None, "ODAH dataset, e.g. odah/tiny (default: the run's).")
_DATA_DIR = flags.DEFINE_string('data_dir', None, 'TFDS data_dir.')
_SPLIT = flags.DEFINE_string('split', 'test', 'Split (with --dataset).')
_MAX_CLIPS = flags.DEFINE_integer('max_clips', 0, 'At most this many clips (0: all).')
_FRAME_BATCH = flags.DEFINE_integer('frame_batch', 16, 'Two-view frames per call of the frame '
                                    'model: memory grows with it, not with the video length '
                                    '(benchmarks/README.md, stream_predict.py).')
_OUT_DIR = flags.DEFINE_string('out_dir', None, 'Output folder.', required=True)
_VIDEOS = flags.DEFINE_list('videos', None, 'Calibrated camera videos (2 or more), named after '
                            'their calibration cameras (or see --camera_names).')
_CALIBRATION = flags.DEFINE_string('calibration', None, 'Calibration file or folder for '
                                   '--videos (formats: banet_jax/capture/calibration.py).')
_CALIBRATION_FORMAT = flags.DEFINE_enum(
    'calibration_format', 'auto', ['auto', 'pose2sim', 'qualisys', 'anipose', 'opencap', 'banet',
                                   'project'], 'Calibration format.')
_CAMERAS = flags.DEFINE_list(
    'cameras', None, 'The two cameras BANet sees (default: the first two videos), or camera '
    'pairs, e.g. cam01+cam04,cam02+cam03: BANet on each pair, their coordinates averaged '
    '(on the Pose2Sim demo 0.5 deg closer to the four-camera reference than one pair, at '
    'twice the network time; MODEL_CARD.md).')
_CAMERA_NAMES = flags.DEFINE_list('camera_names', None, 'Calibration camera of each video, in '
                                  'order (default: from the file names).')
_MASKS = flags.DEFINE_list('masks', None, 'Your own person masks for the --cameras, in the order '
                           'they first appear: a folder of images (one per video frame) or a '
                           'mask video each (default: BlazePose segmentation).')
_NEAR = flags.DEFINE_list('near', None, 'x,y,z (metres, project world: y up): with several '
                          'people, follow the one standing nearest this point (default: the '
                          'most central in the images).')
_AIM = flags.DEFINE_bool('aim_cameras', True, 'Cut the crops from each network camera turned '
                         'about its centre to look at the person with a level image x axis, as '
                         "ODAH's cameras look (a camera rolled on its mount otherwise shows the "
                         'person leaning, which the model never saw); --noaim_cameras: as '
                         'mounted.')
_FPS = flags.DEFINE_float('fps', 60.0, 'Frame rate the videos are resampled to (ODAH: 60).')
_START = flags.DEFINE_integer('start', 0, 'First output frame (at --fps).')
_NUM_FRAMES = flags.DEFINE_integer('num_frames', 0, 'Output frames to process (0: all).')
_NAME = flags.DEFINE_string('name', 'capture', 'Name of the output files (with --videos).')
_CUTOFF_HZ = flags.DEFINE_float(
    'cutoff_hz', 6.0, 'Zero-lag low-pass (Butterworth, 4th order; Pose2Sim: 6 Hz) of the '
    'triangulated landmarks (--method=keypoints) or of the predicted coordinates (banet, '
    'with --videos; 0: none, as the network predicts them).')
_QCA_DISTORTION = flags.DEFINE_float(
    'qualisys_distortion_scale', 1.0, 'Divisor of the distortion coefficients of a Qualisys '
    '.qca.txt (1: as written; Pose2Sim divides by 64). See the README.')


def _clips(predictor):
  """(clip_id, clip dict, fps) to predict."""
  # Lazy: BANet stack, 2.5 s: not for --help.
  from banet_jax import inference  # pylint: disable=g-import-not-at-top
  if _INPUT.value:
    frames = inference.load_frames_npz(_INPUT.value)
    clip = inference.clip_from_frames(frames, predictor.net.config.image_size)
    yield pathlib.Path(_INPUT.value).stem, clip, float(frames['fps'])
    return
  data_config = predictor.train_config.data.override(_DATASET.value, _DATA_DIR.value)
  source = data_config.open(_SPLIT.value, predictor.layout)
  count = len(source) if _MAX_CLIPS.value <= 0 else min(_MAX_CLIPS.value, len(source))
  for i in range(count):
    clip = source[i]
    clip_id = clip.get('clip_id', f'clip{i:04d}')
    clip_id = clip_id.decode() if isinstance(clip_id, bytes) else str(clip_id)
    yield clip_id, clip, float(np.asarray(clip.get('fps', 60.0)))


def _predict_videos(out_dir):
  """--videos: the real-capture front end (banet_jax.capture). The inputs are checked
  before the checkpoint is restored."""
  # Lazy: capture front end, 1.5 s: only with --videos.
  from banet_jax.capture import calibration, pipeline, predict  # pylint: disable=g-import-not-at-top
  # Lazy: capture front end, 1.5 s: only with --videos.
  from banet_jax.capture import keypoints  # pylint: disable=g-import-not-at-top
  if _INPUT.value or _DATASET.value:
    raise ValueError('give --videos, --input or --dataset, not several')
  if not _CALIBRATION.value:
    raise ValueError('--videos needs --calibration')
  calib = calibration.load_calibration(_CALIBRATION.value, _CALIBRATION_FORMAT.value,
                                       qualisys_distortion_scale=_QCA_DISTORTION.value)
  mapping = pipeline.match_videos(_VIDEOS.value, calib, _CAMERA_NAMES.value)
  use_keypoints = _METHOD.value == 'keypoints'
  # The keypoint method uses every camera; the capture still wants two "network" cameras
  # (it cuts their crops, unused here): the first two videos.
  given = (None if use_keypoints else _CAMERAS.value) or list(mapping)[:2]
  pairs = ([tuple(entry.split('+')) for entry in given] if any('+' in e for e in given)
           else [tuple(given)])
  if any(len(pair) != 2 for pair in pairs):
    raise ValueError(f'--cameras: give two cameras (cam01,cam04) or pairs joined by "+" '
                     f'(cam01+cam04,cam02+cam03), got {given}')
  cameras = pipeline.pair_cameras(pairs)  # the order Capture cuts their crops in
  if _NEAR.value and len(_NEAR.value) != 3:
    raise ValueError(f'--near needs x,y,z in metres, got {_NEAR.value}')
  if not 0 <= _CUTOFF_HZ.value < _FPS.value / 2:  # checked before any video is decoded
    raise ValueError(f'--cutoff_hz={_CUTOFF_HZ.value:g} must be below half the frame rate '
                     f'(--fps={_FPS.value:g}: {_FPS.value / 2:g} Hz)')
  masks = None
  if _MASKS.value and not use_keypoints:
    if len(_MASKS.value) != len(cameras):
      raise ValueError(f'--masks needs one folder or video per network camera {list(cameras)}')
    masks = dict(zip(cameras, _MASKS.value))
  capture = pipeline.Capture(mapping, calib, pairs, fps=_FPS.value, start=_START.value,
                             num_frames=_NUM_FRAMES.value or None, masks=masks,
                             aim_cameras=_AIM.value,
                             near=[float(v) for v in _NEAR.value] if _NEAR.value else None)
  name = _NAME.value
  if use_keypoints:
    report = keypoints.keypoints_capture(capture, out_dir, name=name, cutoff_hz=_CUTOFF_HZ.value)
    used = capture.names
  else:
    # Lazy: BANet stack, 2.5 s: not for --help.
    from banet_jax.inference import Predictor  # pylint: disable=g-import-not-at-top
    predictor = Predictor.restore(_CHECKPOINT.value, frame_batch=_FRAME_BATCH.value)
    report = predict.predict_capture(predictor, capture, out_dir, name=name,
                                     cutoff_hz=_CUTOFF_HZ.value or None)
    used = [pipeline.pair_name(pair) for pair in capture.pairs]
  person = report['person']
  where = np.round(person['selection']['position'], 2).tolist()
  print(f'{name}: {capture.num_frames} frames at {capture.fps:g} fps from {", ".join(used)} '
        f'({_METHOD.value}); the person at {where} m (tracks {person["track_per_camera"]}, '
        f'candidates {person["candidates_per_camera"]}); floor from {report["floor"]["source"]}')
  if not use_keypoints and report.get('aimed_cameras'):
    print('  network cameras turned to aim at the person (deg; the vertical\'s lean in the '
          'camera as mounted): ' + ', '.join(
              f"{n} {a['turned_by_deg']:.1f}" + ('' if a['vertical_lean_deg'] is None else
                                                 f" (lean {a['vertical_lean_deg']:+.1f})")
              for n, a in report['aimed_cameras'].items()))
  if not use_keypoints:
    flt = report['coordinate_filter']
    print('  coordinates: ' + (f'the mean of {len(capture.pairs)} pairs\' (circular for '
                               'angles), ' if len(capture.pairs) > 1 else '')
          + (f"low-passed at {flt['cutoff_hz']:g} Hz (zero-lag Butterworth; the network's own "
             "in predictions.npz, raw_coordinates)" if flt else 'as the network predicts them'))
  if use_keypoints:
    summary = report['keypoints']
    rms = summary['marker_rms_mm']
    print(f'  marker RMS (mm): median {np.nanmedian(list(rms.values())):.1f}, ' + ', '.join(
        f'{k} {v:.0f}' for k, v in rms.items()))
    print('  scales: ' + ', '.join(f'{k} {v["factor"]:.3f}' for k, v in summary['scales'].items())
          + (f' (clipped: {summary["clipped_scales"]})' if summary['clipped_scales'] else ''))
    if summary['frames_without_solution']:
      print(f'  frames without a solution (nearest solved frame repeated): '
            f'{summary["frames_without_solution"]}')
  for key, value in report['files'].items():
    print(f'  {key}: {value}')
  per_frame = report['timings_s']['per_frame']
  print('  seconds per frame: ' + ', '.join(f'{k} {v:.3f}' for k, v in per_frame.items()))


def _check_method() -> None:
  """Flag combinations, checked before anything heavy is imported or read."""
  if _METHOD.value == 'keypoints':
    if not _VIDEOS.value or _INPUT.value or _DATASET.value:
      sys.exit('error: --method=keypoints works on calibrated videos: give --videos (three '
               'or more) and --calibration, not --input or --dataset')
    if len(_VIDEOS.value) < 3:
      sys.exit(f'error: the keypoint method triangulates; give three or more calibrated videos '
               f'(--videos has {len(_VIDEOS.value)})')
    for flag in ('checkpoint', 'cameras', 'masks'):
      if flags.FLAGS[flag].present:
        logging.warning('--%s is not used by --method=keypoints (no network; every camera '
                        'is used): ignored', flag)
  elif not _CHECKPOINT.value:
    # Lazy: flax + JAX, 2.1 s: not for --help.
    from banet_jax import released  # pylint: disable=g-import-not-at-top
    logging.warning('no --checkpoint: using the shipped model %s (MODEL_CARD.md)',
                    released.default_model_path())


def main(argv):
  del argv
  if not flags.FLAGS['verbosity'].present:  # orbax logs every restore step at INFO
    logging.set_verbosity(logging.WARNING)
  _check_method()
  # Lazy: OpenSim + BANet stack, 2.5 s: after --help and the flag checks.
  import opensim  # pylint: disable=g-import-not-at-top
  # Lazy: BANet stack: not for --help.
  from banet_jax import checkpoints, data, export, released  # pylint: disable=g-import-not-at-top
  # Lazy: BANet stack: not for --help.
  from banet_jax.inference import Predictor  # pylint: disable=g-import-not-at-top
  opensim.Logger.setLevelString('error')
  out_dir = pathlib.Path(_OUT_DIR.value)
  try:
    if _VIDEOS.value:
      # Every front-end error is a ValueError subclass, or persons.ModelFetchError.
      # Lazy: capture front end: only with --videos.
      from banet_jax.capture import persons  # pylint: disable=g-import-not-at-top
      try:
        _predict_videos(out_dir)
      except persons.ModelFetchError as e:
        sys.exit(f'error: {e}')
      return
    predictor = Predictor.restore(_CHECKPOINT.value, frame_batch=_FRAME_BATCH.value)
    arrays = {}
    for clip_id, clip, fps in _clips(predictor):
      pred = predictor.predict_clip(clip)
      paths = export.export_clip(out_dir, clip_id, pred['coordinates'], pred['scales'], fps,
                                 model_path=predictor.layout.skeleton.source)
      arrays[f'{clip_id}/coordinates'] = pred['coordinates']
      arrays[f'{clip_id}/scales'] = pred['scales']
      print(f'{clip_id}: {len(pred["coordinates"])} frames -> {paths["mot"]}, {paths["osim"]}, '
            f'{paths["trc"]}')
  except (checkpoints.CheckpointError, released.ReleaseError, data.DatasetNotFoundError,
          ValueError) as e:
    sys.exit(f'error: {e}')
  np.savez(out_dir / 'predictions.npz', **arrays)
  print(f'written to {out_dir}')


if __name__ == '__main__':
  app.run(main)
