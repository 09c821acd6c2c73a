"""Tests of banet_jax/released.py: exported models restore and predict like their runs,
and the shipped default model restores and predicts on frames of the real capture."""

from __future__ import annotations

import json

import numpy as np
import pytest

from banet_jax import released
from banet_jax.inference import Predictor
from banet_jax.skeleton import ModelMismatchError
from banet_jax.skeleton.models import project_skeleton
from banet_jax.synthetic import SyntheticClips


@pytest.fixture(scope='module')
def clip(smoke_checkpoint):
  predictor = Predictor.restore(smoke_checkpoint)
  return SyntheticClips(predictor.layout, 1, 8, predictor.net.config.image_size, seed=5)[0]


@pytest.mark.parametrize('dtype,tolerance_deg', [('float32', 0.0), ('float16', 0.05)])
def test_an_exported_run_predicts_like_the_run(smoke_checkpoint, clip, tmp_path, dtype,
                                               tolerance_deg):
  out = released.export_release(smoke_checkpoint, tmp_path / 'rel', name='smoke',
                                storage_dtype=dtype, card={'note': 'test'})
  assert released.is_release(out)
  run = Predictor.restore(smoke_checkpoint)
  release = Predictor.restore(out)
  assert release.release['name'] == 'smoke' and release.release['card'] == {'note': 'test'}
  assert release.step == run.step and release.train_config == run.train_config
  a, b = run.predict_clip(clip), release.predict_clip(clip)
  np.testing.assert_allclose(np.degrees(b['coordinates']), np.degrees(a['coordinates']),
                             atol=tolerance_deg, rtol=0)
  np.testing.assert_allclose(b['scales'], a['scales'], atol=1e-3 if tolerance_deg else 0)


def test_a_damaged_release_is_refused(smoke_checkpoint, tmp_path):
  out = released.export_release(smoke_checkpoint, tmp_path / 'rel', name='smoke')
  blob = bytearray((out / released.PARAMS_FILE).read_bytes())
  blob[-10] ^= 0xFF
  (out / released.PARAMS_FILE).write_bytes(bytes(blob))
  with pytest.raises(released.ReleaseError, match='sha256'):
    Predictor.restore(out)
  (out / released.PARAMS_FILE).unlink()
  with pytest.raises(released.ReleaseError, match='not a complete release'):
    released.load_release(out)


def test_a_release_of_another_model_is_refused(smoke_checkpoint, tmp_path):
  out = released.export_release(smoke_checkpoint, tmp_path / 'rel', name='smoke')
  info = json.loads((out / released.RELEASE_FILE).read_text())
  assert info['train_config']['osim'] == project_skeleton().identity()  # from the checkpoint
  info['train_config']['osim']['coordinate_names'][0] = 'pelvis_tip'
  (out / released.RELEASE_FILE).write_text(json.dumps(info))
  with pytest.raises(ModelMismatchError, match=r"the model in .*rel was made with .*"
                     r"coordinate_names differ \('pelvis_tip' vs 'pelvis_tilt'\)"):
    Predictor.restore(out)


def test_the_default_model_is_shipped_and_described():
  folder = released.default_model_path()
  assert released.resolve(None) == folder == released.resolve('default')
  assert released.resolve(released.DEFAULT_MODEL) == folder
  info = json.loads((folder / released.RELEASE_FILE).read_text())
  assert info['name'] == released.DEFAULT_MODEL
  size_mb = (folder / released.PARAMS_FILE).stat().st_size / 2**20
  assert size_mb < 8, size_mb  # a few MB, in the repository
  params, config, info = released.load_release(folder)  # checksum verified
  assert config['dataset'].startswith('odah/') and info['step'] > 0
  # Trained with banet_fullbody.osim as it is today (the file is unchanged since the
  # project's first commit): the release records that model, and restoring checks it.
  assert config['osim'] == project_skeleton().identity()


def test_the_default_model_predicts_on_the_real_capture(tmp_path):
  from banet_jax.capture import calibration, demo, persons, pipeline
  from banet_jax.capture import predict as capture_predict
  try:
    folder = demo.demo_capture_dir('Demo_SinglePerson')
    persons.blazepose_models()
  except (demo.DemoFetchError, persons.ModelFetchError) as e:
    pytest.skip(f'the package registry cannot be reached: {e}')
  predictor = Predictor.restore()  # the shipped default
  videos = [str(folder / 'videos' / f'cam0{i}.mp4') for i in range(1, 5)]
  calib = calibration.load_calibration(folder / 'calibration' / 'Calib.qca.txt')
  capture = pipeline.open_capture(videos, calib, ('cam01', 'cam04'), num_frames=8,
                                  progress=False)
  report = capture_predict.predict_capture(predictor, capture, tmp_path / 'out', name='demo')
  q = np.load(tmp_path / 'out' / 'predictions.npz')['coordinates']
  assert q.shape == (8, predictor.layout.skeleton.num_coordinates) and np.all(np.isfinite(q))
  skel = predictor.layout.skeleton
  # The person stands: knees between -10 and 120 degrees of flexion, pelvis ~1 m high.
  knees = np.degrees(q[:, [skel.coordinate_index('knee_angle_r'),
                           skel.coordinate_index('knee_angle_l')]])
  assert np.all((knees > -10) & (knees < 120)), knees
  ty = q[:, skel.coordinate_index('pelvis_ty')]
  assert np.all((ty > 0.6) & (ty < 1.4)), ty
  # Placed on the person: the matched joints within half a metre of the landmarks (the
  # quality of the pose itself is measured by benchmarks/sim_to_real.py, not here).
  assert report['placement']['median_residual_m'] < 0.5


def test_training_starts_from_a_release(smoke_checkpoint, tmp_path):
  """`init_from` takes a release (e.g. 'default': fine-tune the shipped model): its frame
  parameters exactly, and a clear error for another network size."""
  import jax  # pylint: disable=g-import-not-at-top
  from banet_jax import train  # pylint: disable=g-import-not-at-top
  from banet_jax.run_config import TrainConfig  # pylint: disable=g-import-not-at-top
  out = released.export_release(smoke_checkpoint, tmp_path / 'rel', name='smoke')
  params, config_json, _ = released.load_release(out)
  config = TrainConfig.from_json(config_json).replace(stage=2, init_from=str(out))
  frame, where = train.load_frame_params(config.init_from, train.Task(config))
  assert where == f'release {out}'
  jax.tree.map(np.testing.assert_array_equal, frame, params['frame'])
  other = config.replace(model_overrides={**config.model_overrides, 'num_points': 8})
  with pytest.raises(train.IncompatibleCheckpointError, match=r'release .*num_points'):
    train.load_frame_params(str(out), train.Task(other))
