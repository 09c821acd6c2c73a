"""launch.predict --videos: the real capture end to end, and every bad input.

The capture is Pose2Sim's demo trial (banet_jax.capture.demo fetches it from the package
registry; the tests skip only when the registry cannot be reached). The model is the
session's smoke checkpoint (conftest), so the angles mean nothing; what is checked is the
plumbing: files OpenSim opens, the person chosen, the body placed in the lab, pictures of
every camera, clear errors that name the file, camera and frame, and nothing half-written.
"""

from __future__ import annotations

import json
import os
import pathlib
import shutil
import subprocess
import sys

import cv2
import numpy as np
import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]


@pytest.fixture(scope='module')
def demo_dir():
  from banet_jax.capture import demo
  try:
    return demo.demo_capture_dir('Demo_SinglePerson')
  except demo.DemoFetchError as e:
    pytest.skip(f'the package registry cannot be reached: {e}')


@pytest.fixture(scope='module')
def blazepose_ready():
  from banet_jax.capture import persons
  try:
    persons.blazepose_models()
  except persons.ModelFetchError as e:
    pytest.skip(f'the package registry cannot be reached: {e}')


def _predict(*args):
  env = dict(os.environ)
  env['PYTHONPATH'] = os.pathsep.join(p for p in (str(ROOT), env.get('PYTHONPATH')) if p)
  return subprocess.run([sys.executable, '-m', 'launch.predict', *args], cwd=ROOT, env=env,
                        capture_output=True, text=True, timeout=900, check=False)


def _videos(folder, cams=(1, 2, 3, 4)):
  return ','.join(str(folder / 'videos' / f'cam0{i}.mp4') for i in cams)


def test_videos_to_opensim_files_on_the_real_capture(smoke_checkpoint, demo_dir, blazepose_ready,
                                                     tmp_path):
  import opensim
  from banet_jax import filtering
  from banet_jax.skeleton.models import project_skeleton
  skel = project_skeleton()
  out_dir = tmp_path / 'out'
  out = _predict(f'--checkpoint={smoke_checkpoint}', f'--videos={_videos(demo_dir)}',
                 f'--calibration={demo_dir / "calibration" / "Calib.qca.txt"}',
                 '--cameras=cam01,cam04', '--num_frames=12', f'--out_dir={out_dir}', '--name=demo')
  assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
  report = json.loads((out_dir / 'report.json').read_text())
  assert report['network_cameras'] == ['cam01', 'cam04']
  assert report['frames'] == 12 and report['floor']['source'] == 'calibration'
  assert set(report['person']['track_per_camera']) == {'cam01', 'cam02', 'cam03', 'cam04'}
  for name in ('demo.mot', 'demo.trc', 'demo.osim', 'angles.png', 'overlays.png',
               'network_inputs.png',
               'predictions.npz', *(f'overlay_cam0{i}.png' for i in range(1, 5))):
    assert (out_dir / name).is_file(), name
  model = opensim.Model(str(out_dir / 'demo.osim'))
  model.initSystem()
  table = opensim.TimeSeriesTable(str(out_dir / 'demo.mot'))
  assert table.getNumRows() == 12
  # The coordinates written are the network's, placed, then low-passed at 6 Hz (the
  # default --cutoff_hz); the network's own are kept in predictions.npz.
  assert report['coordinate_filter']['cutoff_hz'] == 6.0
  arrays = np.load(out_dir / 'predictions.npz')
  np.testing.assert_allclose(arrays['coordinates'], filtering.filter_coordinates(
      skel, arrays['raw_coordinates'], 60.0), atol=1e-9)
  assert np.abs(np.diff(arrays['coordinates'], 2, axis=0)).mean() < np.abs(
      np.diff(arrays['raw_coordinates'], 2, axis=0)).mean()
  labels = list(table.getColumnLabels())
  # The body stands in the lab: the subject balances near the calibration origin, pelvis
  # about a metre above the floor (any pose of the untrained model keeps it within 0.5 m).
  ty = np.array(table.getDependentColumn('pelvis_ty').to_numpy())
  tx = np.array(table.getDependentColumn('pelvis_tx').to_numpy())
  assert 'pelvis_tz' in labels and np.all(np.abs(tx) < 1.5) and np.all((ty > 0.5) & (ty < 1.5))
  sheet = cv2.imread(str(out_dir / 'overlay_cam02.png'))
  assert sheet is not None and sheet.shape[1] > sheet.shape[0]  # frames side by side
  assert not [p for p in tmp_path.iterdir() if p.name.startswith('.partial-')]


def _write_video(path, frames, size, fps=60.0, value=0):
  writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*'mp4v'), fps, size)
  for _ in range(frames):
    writer.write(np.full((size[1], size[0], 3), value, np.uint8))
  writer.release()


def _bad_capture(case, demo_dir, folder):
  """Two-camera inputs with one defect; returns (videos, expected words of the message)."""
  for i in (1, 4):
    shutil.copy(demo_dir / 'videos' / f'cam0{i}.mp4', folder / f'cam0{i}.mp4')
  paths = [folder / 'cam01.mp4', folder / 'cam04.mp4']
  if case == 'frame_count':
    _write_video(folder / 'cam04.mp4', 50, (1088, 1920))
    return paths, ['cam04', 'cam01', '50', '100']
  if case == 'missing_camera':
    shutil.move(folder / 'cam04.mp4', folder / 'cam09.mp4')
    return [paths[0], folder / 'cam09.mp4'], ['cam09.mp4', 'cam01', 'cam04']
  if case == 'undecodable':
    (folder / 'cam04.mp4').write_bytes(os.urandom(4096))
    return paths, ['cam04.mp4']
  if case == 'no_person':
    _write_video(folder / 'cam04.mp4', 100, (1088, 1920))
    return paths, ['cam04', 'no person']
  if case == 'frame_size':
    _write_video(folder / 'cam04.mp4', 100, (720, 1280))
    return paths, ['cam04', '720', '1088']
  if case == 'frame_rate':
    _write_video(folder / 'cam04.mp4', 100, (1088, 1920), fps=30.0)
    return paths, ['cam04', '30', '60']
  return paths[:1], ['two']


@pytest.mark.parametrize('case', ['frame_count', 'missing_camera', 'undecodable', 'no_person',
                                  'frame_size', 'frame_rate', 'one_camera'])
def test_bad_inputs_fail_clearly(case, demo_dir, blazepose_ready, tmp_path):
  from banet_jax.capture import calibration, pipeline
  calib = calibration.load_calibration(demo_dir / 'calibration' / 'Calib.qca.txt')
  paths, expect = _bad_capture(case, demo_dir, tmp_path)
  with pytest.raises(ValueError) as info:
    capture = pipeline.open_capture([str(p) for p in paths], calib, num_frames=4,
                                    progress=False)
    for _ in capture.segments(crop_size=32):
      pass
  for word in expect:
    assert word.lower() in str(info.value).lower(), (word, str(info.value))


def test_command_reports_an_error_in_one_line_and_writes_nothing(smoke_checkpoint, demo_dir,
                                                                 blazepose_ready, tmp_path):
  folder = tmp_path / 'videos'
  folder.mkdir()
  paths, expect = _bad_capture('no_person', demo_dir, folder)
  out_dir = tmp_path / 'out'
  out = _predict(f'--checkpoint={smoke_checkpoint}', f'--videos={",".join(map(str, paths))}',
                 f'--calibration={demo_dir / "calibration" / "Calib.qca.txt"}', '--num_frames=4',
                 f'--out_dir={out_dir}')
  assert out.returncode != 0
  message = out.stderr.strip().splitlines()[-1]
  assert message.startswith('error:') and all(w in message for w in expect), out.stderr[-2000:]
  assert not out_dir.exists()
  assert not [p for p in tmp_path.iterdir() if p.name.startswith('.partial-')]


def test_two_camera_pairs_are_predicted_apart_and_averaged(smoke_checkpoint, demo_dir,
                                                           blazepose_ready, tmp_path):
  """network_cameras as a list of pairs: every network camera's crops cut once, one clip per
  pair, each pair's prediction equal to that pair's own capture, their mean written."""
  from banet_jax.capture import calibration, pipeline, predict
  from banet_jax.inference import Predictor
  predictor = Predictor.restore(smoke_checkpoint)
  calib = calibration.load_calibration(demo_dir / 'calibration' / 'Calib.qca.txt')
  videos = [str(demo_dir / 'videos' / f'cam0{i}.mp4') for i in (1, 2, 3, 4)]
  pairs = [('cam01', 'cam04'), ('cam02', 'cam03')]
  capture = pipeline.open_capture(videos, calib, pairs, num_frames=4, progress=False)
  assert capture.network_cameras == ('cam01', 'cam04', 'cam02', 'cam03')
  report = predict.predict_capture(predictor, capture, tmp_path / 'both', overlay_count=1,
                                   cutoff_hz=None)
  assert report['pairs'] == [list(p) for p in pairs] and 'pair_average' in report
  assert set(report['aimed_cameras']) == set(capture.network_cameras)
  arrays = np.load(tmp_path / 'both' / 'predictions.npz')
  skel = predictor.layout.skeleton
  assert arrays['pair_coordinates'].shape == (2, 4, skel.num_coordinates)
  alone = pipeline.open_capture(videos, calib, pairs[1], num_frames=4, progress=False)
  segment = next(alone.segments(predictor.net.config.image_size))
  own = alone.world_coordinates(skel, predictor.predict_clip(segment.clip)['coordinates'])
  np.testing.assert_allclose(arrays['pair_coordinates'][1], own, atol=1e-5)
  # Written: the pairs' mean, placed (the pelvis translation is the placement's).
  mean = predict.average_coordinates(skel, arrays['pair_coordinates'])
  rotations = np.asarray(skel.rotational)
  np.testing.assert_allclose(arrays['coordinates'][:, rotations], mean[:, rotations], atol=1e-9)
  sheet = cv2.imread(str(tmp_path / 'both' / 'network_inputs.png'))
  assert sheet.shape[1] == 4 * 160  # one column per network camera
  with pytest.raises(pipeline.CaptureError, match='two different cameras'):
    pipeline.open_capture(videos, calib, [('cam01', 'cam04'), ('cam02', 'cam02')])


def test_camera_pairs_on_the_command_line_and_a_malformed_pair(smoke_checkpoint, demo_dir,
                                                               blazepose_ready, tmp_path):
  """--cameras=cam01+cam04,cam02+cam03 predicts with both pairs; a pair of three cameras,
  or a low-pass cutoff above half the frame rate, is a one-line error before any video is
  decoded."""
  calib = f'--calibration={demo_dir / "calibration" / "Calib.qca.txt"}'
  out = _predict(f'--checkpoint={smoke_checkpoint}', f'--videos={_videos(demo_dir)}', calib,
                 '--cameras=cam01+cam04,cam02+cam03', '--num_frames=3',
                 f'--out_dir={tmp_path / "pairs"}')
  assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
  assert 'cam01+cam04, cam02+cam03' in out.stdout and 'mean of 2 pairs' in out.stdout
  report = json.loads((tmp_path / 'pairs' / 'report.json').read_text())
  assert report['pairs'] == [['cam01', 'cam04'], ['cam02', 'cam03']]
  bad = _predict(f'--checkpoint={smoke_checkpoint}', f'--videos={_videos(demo_dir)}', calib,
                 '--cameras=cam01+cam04+cam02', f'--out_dir={tmp_path / "bad"}')
  assert bad.returncode != 0
  message = bad.stderr.strip().splitlines()[-1]
  assert message.startswith('error:') and 'joined by "+"' in message, bad.stderr[-2000:]
  assert not (tmp_path / 'bad').exists()
  fast = _predict(f'--checkpoint={smoke_checkpoint}', f'--videos={_videos(demo_dir)}', calib,
                  '--fps=10', '--cutoff_hz=6', f'--out_dir={tmp_path / "fast"}')
  message = fast.stderr.strip().splitlines()[-1]
  assert fast.returncode != 0 and message.startswith('error:') and '5 Hz' in message, message


def test_floor_from_the_feet_where_the_calibration_has_none(smoke_checkpoint, demo_dir,
                                                            blazepose_ready, tmp_path):
  """The demo's lab world lifted by 0.5 m and its floor forgotten (as in a checkerboard
  world): the floor comes back from the feet, and the body stands where it stood."""
  import opensim
  from banet_jax.capture import calibration, pipeline, predict
  from banet_jax.inference import Predictor
  opensim.Logger.setLevelString('error')
  predictor = Predictor.restore(smoke_checkpoint)
  lab = calibration.load_calibration(demo_dir / 'calibration' / 'Calib.qca.txt')
  lifted = lab.transformed(np.eye(3), np.array([0.0, 0.5, 0.0]), floor_known=False)
  videos = [str(demo_dir / 'videos' / f'cam0{i}.mp4') for i in (1, 2, 3, 4)]
  reports, heights = [], []
  for name, calib in (('lab', lab), ('lifted', lifted)):
    capture = pipeline.open_capture(videos, calib, ('cam01', 'cam04'), num_frames=4,
                                    progress=False)
    reports.append(predict.predict_capture(predictor, capture, tmp_path / name, name=name,
                                           overlay_count=1))
    heights.append(np.load(tmp_path / name / 'predictions.npz')['coordinates'][:, 4])
  assert reports[0]['floor']['source'] == 'calibration'
  floor = reports[1]['floor']
  assert floor['source'] == 'feet' and 0.45 < floor['height_m'] < 0.6
  # The lowest foot landmark sits a few centimetres above the true floor.
  np.testing.assert_allclose(heights[1], heights[0] - (floor['height_m'] - 0.5), atol=1e-3)


def test_two_people_one_chosen_and_the_other_on_request(blazepose_ready):
  """Pose2Sim's two-person demo: the default follows the most central person in every
  camera; `near` the other one; both are reported with their position."""
  from banet_jax.capture import calibration, demo, pipeline
  try:
    folder = demo.demo_capture_dir('Demo_MultiPerson')
  except demo.DemoFetchError as e:
    pytest.skip(f'the package registry cannot be reached: {e}')
  calib = calibration.load_calibration(folder / 'calibration' / 'Calib.qca.txt')
  videos = [str(folder / 'videos' / f'cam0{i}.mp4') for i in (1, 2, 3, 4)]

  def chosen(near):
    capture = pipeline.open_capture(videos, calib, ('cam01', 'cam03'), num_frames=10,
                                    select_frames=10, near=near, progress=False)
    for _ in capture.segments(crop_size=32):
      pass
    assert max(capture.report['person']['candidates_per_camera'].values()) >= 2
    return capture.report['person']['selection']

  default = chosen(None)
  people = [default['candidates'][k]['position'] for k in default['persons']]
  others = [p for p in people if np.linalg.norm(np.subtract(p, default['position'])) > 0.5]
  assert others, default
  positions = [np.asarray(default['position']), np.asarray(chosen(others[0])['position'])]
  assert np.linalg.norm(positions[0] - positions[1]) > 0.5


def test_user_masks_from_a_folder_and_a_video(demo_dir, blazepose_ready, tmp_path):
  """--masks: a folder of images for one camera, a mask video for the other; the crops
  follow them, and an empty mask of the user's is an error naming camera, file and frame."""
  from banet_jax.capture import calibration, pipeline
  calib = calibration.load_calibration(demo_dir / 'calibration' / 'Calib.qca.txt')
  videos = [str(demo_dir / 'videos' / f'cam0{i}.mp4') for i in (1, 4)]
  folder = tmp_path / 'cam01_masks'
  folder.mkdir()
  box = np.zeros((1920, 1080), np.uint8)
  box[500:1500, 300:700] = 255  # 400 x 1000 px: a square crop of side 1100
  for f in range(4):
    cv2.imwrite(str(folder / f'{f:05d}.png'), box if f != 2 else box * 0)
  _write_video(tmp_path / 'cam04_masks.avi', 4, (1088, 1920), value=255)

  def run(frames):  # cameras as mounted, so that the boxes' sizes are the masks' own
    capture = pipeline.open_capture(videos, calib, num_frames=frames, progress=False,
                                    aim_cameras=False, masks={'cam01': str(folder),
                                           'cam04': str(tmp_path / 'cam04_masks.avi')})
    return [s.clip for s in capture.segments(crop_size=32)]

  clip = run(2)[0]
  np.testing.assert_allclose(clip['crop_meta'][0, 0, 2], 1100 / 32, rtol=0.02)
  np.testing.assert_allclose(clip['crop_meta'][1, 0, 2], 1920 * 1.1 / 32, rtol=0.02)
  with pytest.raises(ValueError, match=r'camera cam01 .*frame 2: the mask in .*cam01_masks'):
    run(4)


def test_a_stretch_from_the_middle_at_another_frame_rate(demo_dir, blazepose_ready):
  """--start and --fps: output frames count from --start; 30 fps takes every second
  source frame of the 60-fps videos."""
  from banet_jax.capture import calibration, pipeline
  calib = calibration.load_calibration(demo_dir / 'calibration' / 'Calib.qca.txt')
  videos = [str(demo_dir / 'videos' / f'cam0{i}.mp4') for i in (1, 4)]
  capture = pipeline.open_capture(videos, calib, fps=30.0, start=20, num_frames=4,
                                  select_frames=2, progress=False)
  segments = list(capture.segments(crop_size=32, segment_frames=3, thumbnail_frames=[1]))
  assert [(s.start, s.stop) for s in segments] == [(0, 3), (3, 4)]
  assert capture.source_frames.tolist() == [40, 42, 44, 46]
  assert capture.report['source_frames'] == [40, 46] and list(capture.thumbnails) == [1]
  assert np.isfinite(capture.landmarks).all() and segments[0].clip['crops'].shape[:2] == (2, 3)


def test_network_cameras_are_aimed_at_the_person_and_level(demo_dir, blazepose_ready):
  """The demo's cam04 is rolled about 26 deg on its mount and cam01 about 13: the world
  vertical through the person leans by that much in their images, which ODAH never shows.
  The clip's cameras are those cameras turned to look at the person with a level image x
  axis: the vertical is upright in them, the aim point sits at the principal point, and
  the person's triangulated hips land inside both crop masks in every frame."""
  from banet_jax import geometry
  from banet_jax.capture import calibration, pipeline, placement
  calib = calibration.load_calibration(demo_dir / 'calibration' / 'Calib.qca.txt')
  videos = [str(demo_dir / 'videos' / f'cam0{i}.mp4') for i in range(1, 5)]
  capture = pipeline.open_capture(videos, calib, ('cam01', 'cam04'), num_frames=4,
                                  select_frames=2, progress=False)
  clip = next(iter(capture.segments(crop_size=64))).clip
  aimed = capture.report['aimed_cameras']
  assert 20 < abs(aimed['cam04']['vertical_lean_deg']) < 32, aimed
  assert 8 < abs(aimed['cam01']['vertical_lean_deg']) < 18, aimed
  for entry in aimed.values():
    assert entry['turned_by_deg'] >= abs(entry['vertical_lean_deg']) - 1.0, aimed
  # Clip frame X' of a world point X: X = origin + turn @ X'.
  turn = placement.vertical_rotation(np.radians(capture.clip_heading_deg()))
  to_clip = lambda x: (np.asarray(x) - capture.clip_origin()) @ turn
  aim = to_clip(capture.aim_point())
  points, _ = capture.triangulate()
  hips = to_clip(points[:, list(pipeline.HIPS)].mean(axis=1))  # (T, 3)
  for v in range(2):
    K, R, t = (np.asarray(clip[k][v], np.float64) for k in ('camera_K', 'camera_R', 'camera_t'))
    assert abs(pipeline.vertical_lean_deg(K, R, t, aim)) < 0.1
    np.testing.assert_allclose(geometry.project(aim, K, R, t), K[:2, 2], atol=0.05)
    for f in range(4):
      x, y = np.round(geometry.full_to_crop(geometry.project(hips[f], K, R, t),
                                            clip['crop_meta'][v, f])).astype(int)
      assert clip['masks'][v, f, y, x], (v, f, x, y)
  # Not aimed: the clip's cameras are the calibration's, the lean still reported.
  mounted = pipeline.open_capture(videos, calib, ('cam01', 'cam04'), num_frames=2,
                                  select_frames=2, aim_cameras=False, progress=False)
  clip = next(iter(mounted.segments(crop_size=64))).clip
  cam04 = calib.cameras[calib.names.index('cam04')]
  turn = placement.vertical_rotation(np.radians(mounted.clip_heading_deg()))
  np.testing.assert_allclose(clip['camera_R'][1], cam04.R @ turn, atol=1e-5)
  assert mounted.report['aimed_cameras']['cam04']['turned_by_deg'] == 0.0
  assert abs(mounted.report['aimed_cameras']['cam04']['vertical_lean_deg']) > 20


def test_a_camera_that_exchanges_left_and_right_is_corrected(demo_dir, blazepose_ready):
  """cam02's BlazePose labels the subject's left side right in runs of frames from 33 to
  72 of the demo (the other three cameras never do); the capture finds and undoes it."""
  from banet_jax.capture import calibration, pipeline, placement
  calib = calibration.load_calibration(demo_dir / 'calibration' / 'Calib.qca.txt')
  videos = [str(demo_dir / 'videos' / f'cam0{i}.mp4') for i in range(1, 5)]
  capture = pipeline.open_capture(videos, calib, start=30, num_frames=14, select_frames=2,
                                  progress=False)
  list(capture.segments(crop_size=32))
  swaps = capture.report['left_right_swaps']
  assert list(swaps) == ['cam02'], swaps
  assert {41, 42, 43} <= set(swaps['cam02']['upper']) <= set(range(33, 44)), swaps
  assert {41, 42, 43} <= set(swaps['cam02']['lower']) <= set(range(33, 44)), swaps
  # Corrected, nothing is left to exchange, and the four cameras agree.
  assert not placement.left_right_swaps(capture.landmarks, capture.visibility,
                                        calib.cameras).any()
  _, used = capture.triangulate()
  assert np.median(used[:, 11:]) == 4


def test_predictions_of_several_pairs_average_across_the_wrap():
  """capture.predict.average_coordinates: angles by their circular mean (+179 and -179 deg
  give 180, not 0), translations and others by the arithmetic mean."""
  from banet_jax.capture import predict
  from banet_jax.skeleton.models import project_skeleton
  skel = project_skeleton()
  rot, knee = skel.coordinate_index('pelvis_rotation'), skel.coordinate_index('knee_angle_r')
  tx = skel.coordinate_index('pelvis_tx')
  a, b = np.zeros((3, skel.num_coordinates)), np.zeros((3, skel.num_coordinates))
  a[:, rot], b[:, rot] = np.radians(179.0), np.radians(-179.0)
  a[:, knee], b[:, knee] = 0.2, 0.6
  a[:, tx], b[:, tx] = 1.0, 2.0
  mean = predict.average_coordinates(skel, [a, b])
  np.testing.assert_allclose(np.abs(mean[:, rot]), np.pi, atol=1e-12)
  np.testing.assert_allclose(mean[:, knee], 0.4, atol=1e-12)
  np.testing.assert_allclose(mean[:, tx], 1.5, atol=1e-12)
  np.testing.assert_allclose(predict.average_coordinates(skel, [a]), a, atol=1e-12)
  with pytest.raises(ValueError, match='coordinates must be'):
    predict.average_coordinates(skel, [a[:, :4]])
