"""launch.eval, launch.predict and the Colab notebook, on a smoke-trained checkpoint.

One tiny checkpoint is trained once per session (conftest's `smoke_checkpoint`: launch.train
with the smoke flagfile on generated data); evaluation, prediction and the notebook all
restore it.
"""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]


def _run(args, **env):
  full_env = dict(os.environ, **env)
  full_env['PYTHONPATH'] = os.pathsep.join(p for p in (str(ROOT), full_env.get('PYTHONPATH'))
                                           if p)
  out = subprocess.run([sys.executable, *args], cwd=ROOT, env=full_env, capture_output=True,
                       text=True, timeout=900, check=False)
  return out


@pytest.fixture(scope='module')
def checkpoint(smoke_checkpoint):
  return smoke_checkpoint


def test_predictor_restores_and_predicts_a_clip(checkpoint):
  from banet_jax import data
  from banet_jax.inference import Predictor, chunk_windows
  predictor = Predictor.restore(checkpoint)
  config = predictor.train_config
  source = data.open_source('synthetic', 'test', layout=predictor.layout,
                            synthetic_clips=1, synthetic_frames=config.synthetic_frames,
                            synthetic_crop_size=config.synthetic_crop_size)
  clip = source[0]
  out = predictor.predict_clip(clip)
  frames = clip['crops'].shape[1]
  assert out['coordinates'].shape == (frames, predictor.layout.skeleton.num_coordinates)
  assert out['scales'].shape == (predictor.layout.skeleton.num_bodies, 3)
  assert np.all(np.isfinite(out['coordinates'])) and np.all(out['scales'] > 0)
  # Deterministic: the same clip gives the same prediction.
  np.testing.assert_array_equal(predictor.predict_clip(clip)['coordinates'], out['coordinates'])
  assert chunk_windows(20, 8) == [0, 8, 12] and chunk_windows(5, 8) == [0]


def test_eval_writes_metrics_next_to_the_baseline_and_exports(checkpoint, tmp_path):
  out = _run(['-m', 'launch.eval', f'--checkpoint={checkpoint}', '--split=test',
              f'--out_dir={tmp_path}', '--plot_clips=1', '--export_clips=1'])
  assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
  results = json.loads((tmp_path / 'metrics.json').read_text())
  assert set(results) == {'BANet', 'mean-pose baseline'}
  for summary in results.values():
    assert np.isfinite(summary['coordinate_mae_deg']) and summary['frames'] > 0
  assert '| metric | BANet | mean-pose baseline |' in out.stdout
  assert list(tmp_path.glob('curves_*.png')) and (tmp_path / 'coordinate_errors.png').exists()
  exported = sorted(p.suffix for p in (tmp_path / 'exports').iterdir())
  assert exported == ['.mot', '.osim', '.trc']


def test_eval_low_passes_the_predictions_when_asked(checkpoint, tmp_path, monkeypatch):
  """evaluate_checkpoint(cutoff_hz=6) measures each clip's prediction after
  filtering.filter_coordinates, and only the prediction (the baseline is unchanged)."""
  import dataclasses
  from banet_jax import evaluation, filtering
  from banet_jax.inference import Predictor
  predictor = Predictor.restore(checkpoint)
  # 24-frame clips: the smoke run's 8 are shorter than the filter's padding (left as is).
  predictor.train_config = dataclasses.replace(predictor.train_config, synthetic_frames=24)
  monkeypatch.setattr(evaluation.Predictor, 'restore', lambda *args, **kwargs: predictor)
  run = lambda name, cutoff: evaluation.evaluate_checkpoint(
      str(checkpoint), 'test', tmp_path / name, max_clips=1, plot_clips=0, export_clips=0,
      cutoff_hz=cutoff, log=lambda *args: None)
  raw, low = run('raw', None), run('low', 6.0)
  assert low['mean-pose baseline'] == raw['mean-pose baseline']
  assert low['BANet']['coordinate_mae_deg'] != raw['BANet']['coordinate_mae_deg']
  layout = predictor.layout
  clip = predictor.train_config.data.open('test', layout)[0]
  pred = predictor.predict_clip(clip)
  q = filtering.filter_coordinates(layout.skeleton, pred['coordinates'], 60.0, 6.0)
  gt_q = np.asarray(clip['coordinates'], np.float64)
  gt_s = np.broadcast_to(np.asarray(clip['scales'], np.float64),
                         (len(gt_q),) + np.shape(pred['scales']))
  pred_s = np.broadcast_to(pred['scales'], gt_s.shape)
  by_hand = evaluation.summarize(layout, evaluation.frame_metrics(layout, q, pred_s, gt_q, gt_s))
  assert low['BANet']['coordinate_mae_deg'] == pytest.approx(by_hand['coordinate_mae_deg'],
                                                             rel=1e-9)


def test_predict_on_a_two_view_npz(checkpoint, tmp_path):
  """The documented raw-input format: full frames + masks + cameras."""
  from banet_jax import data
  from banet_jax.inference import Predictor
  predictor = Predictor.restore(checkpoint)
  clip = data.open_source('synthetic', 'test', layout=predictor.layout, synthetic_clips=1,
                          synthetic_frames=8, synthetic_crop_size=32)[0]
  # Full frames consistent with the clip's cameras: each crop pasted back where its meta
  # says (nearest neighbour), the rest black.
  from banet_jax.synthetic import FULL_IMAGE
  width, height = FULL_IMAGE
  ys, xs = np.mgrid[0:height, 0:width]
  images = np.zeros((2, 8, height, width, 3), np.uint8)
  masks = np.zeros((2, 8, height, width), np.uint8)
  size = clip['crops'].shape[2]
  for v in range(2):
    for t in range(8):
      ox, oy, scale = clip['crop_meta'][v, t]
      cx, cy = np.rint((xs - ox) / scale).astype(int), np.rint((ys - oy) / scale).astype(int)
      ok = (cx >= 0) & (cx < size) & (cy >= 0) & (cy < size)
      images[v, t][ok] = clip['crops'][v, t][cy[ok], cx[ok]]
      masks[v, t][ok] = clip['masks'][v, t][cy[ok], cx[ok]]
  path = tmp_path / 'trial.npz'
  np.savez(path, images=images, masks=masks, K=clip['camera_K'], R=clip['camera_R'],
           t=clip['camera_t'], fps=30.0)
  out = _run(['-m', 'launch.predict', f'--checkpoint={checkpoint}', f'--input={path}',
              f'--out_dir={tmp_path / "out"}'])
  assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
  assert sorted(p.name for p in (tmp_path / 'out').iterdir()) == [
      'predictions.npz', 'trial.mot', 'trial.osim', 'trial.trc']


def test_predict_bad_inputs(checkpoint, tmp_path):
  bad = tmp_path / 'bad.npz'
  np.savez(bad, images=np.zeros((2, 3, 8, 8, 3), np.uint8))
  out = _run(['-m', 'launch.predict', f'--checkpoint={checkpoint}', f'--input={bad}',
              f'--out_dir={tmp_path / "o"}'])
  assert out.returncode != 0 and 'missing arrays' in out.stderr
  out = _run(['-m', 'launch.predict', f'--checkpoint={tmp_path / "nothing"}', f'--input={bad}',
              f'--out_dir={tmp_path / "o"}'])
  assert out.returncode != 0 and 'no such checkpoint' in out.stderr


def _run_notebook(env):
  nbclient = pytest.importorskip('nbclient')
  nbformat = pytest.importorskip('nbformat')
  notebook = nbformat.read(ROOT / 'notebooks' / 'restore_and_predict.ipynb', as_version=4)
  env = {**env, 'MPLBACKEND': 'Agg'}
  old = {k: os.environ.get(k) for k in env}
  os.environ.update(env)
  try:
    nbclient.NotebookClient(notebook, timeout=600, kernel_name='python3',
                            resources={'metadata': {'path': str(ROOT)}}).execute()
  finally:
    for k, v in old.items():
      if v is None:
        os.environ.pop(k, None)
      else:
        os.environ[k] = v


def test_notebook_runs_headless_on_a_synthetic_clip(checkpoint, tmp_path):
  _run_notebook({'BANET_CHECKPOINT': str(checkpoint), 'BANET_INPUT': 'synthetic',
                 'BANET_OUT_DIR': str(tmp_path)})
  assert list(tmp_path.glob('*.mot')) and list(tmp_path.glob('*.osim'))


def test_notebook_runs_the_shipped_model_on_the_real_capture(tmp_path):
  from banet_jax.capture import demo, persons
  try:
    demo.demo_capture_dir('Demo_SinglePerson')
    persons.blazepose_models()
  except (demo.DemoFetchError, persons.ModelFetchError) as e:
    pytest.skip(f'the package registry cannot be reached: {e}')
  _run_notebook({'BANET_NUM_FRAMES': '6', 'BANET_OUT_DIR': str(tmp_path)})  # the defaults
  for name in ('demo.mot', 'demo.osim', 'overlays.png', 'angles.png'):
    assert (tmp_path / name).is_file(), name


@pytest.mark.parametrize('stage', [1, 2])
def test_predictor_streams_frames_in_batches_like_whole_windows(stage, fast_compile):
  """Predictor encodes each frame once in `frame_batch` batches (the last one padded) and
  refines chunks of those outputs; that equals the network applied to each whole window."""
  import jax
  from banet_jax import data
  from banet_jax.inference import Predictor, chunk_windows
  from banet_jax.model.banet import BANet, get_config
  net = BANet.create(get_config('tiny'))
  init = net.init_frame if stage == 1 else net.init_sequence
  params = jax.jit(init)(jax.random.key(3))['params']
  length = net.config.chunk_length
  del fast_compile
  frames = length + length // 2  # two windows: 0, and L/2 aligned with the clip's end
  clip = data.open_source('synthetic', 'test', layout=net.layout, synthetic_clips=1,
                          synthetic_frames=frames, synthetic_crop_size=net.config.image_size)[0]
  predictor = Predictor(net, params, stage, frame_batch=5)  # 5 does not divide 24
  raw = predictor.predict_raw(clip)
  assert raw.shape == (frames, net.layout.out_dim)
  inputs = predictor._inputs(clip, range(frames))  # pylint: disable=protected-access
  if stage == 1:
    expected = np.asarray(jax.jit(net.frame.apply)({'params': params}, *inputs))
  else:
    expected, apply = np.zeros_like(raw), jax.jit(net.sequence.apply)
    starts = chunk_windows(frames, length)
    assert starts == [0, frames - length]
    for start in reversed(starts):  # the first window that holds a frame wins
      window = tuple(x[None, start:start + length] for x in inputs)
      expected[start:start + length] = apply({'params': params}, *window)[1][0]
  np.testing.assert_allclose(raw, expected, rtol=1e-4, atol=1e-5)
  with pytest.raises(ValueError, match='frame_batch'):
    Predictor(net, params, stage, frame_batch=0)


def test_a_silhouette_model_predicts_from_the_masks_alone(fast_compile):
  """Prediction feeds a model what it was trained on: a silhouette model's output does not
  change when the person's colours do, an RGB model's does."""
  import jax
  from banet_jax import data
  from banet_jax.inference import Predictor
  from banet_jax.model.banet import BANet, get_config
  del fast_compile
  clip = None
  outputs = {}
  for appearance in ('silhouette', 'rgb'):
    net = BANet.create(get_config('tiny', appearance=appearance))
    params = jax.jit(net.init_frame)(jax.random.key(0))['params']
    if clip is None:
      clip = data.open_source('synthetic', 'test', layout=net.layout, synthetic_clips=1,
                              synthetic_frames=4, synthetic_crop_size=net.config.image_size)[0]
    predictor = Predictor(net, params, 1, frame_batch=4)
    outputs[appearance] = [predictor.predict_raw(dict(clip, crops=crops))
                           for crops in (clip['crops'], 255 - np.asarray(clip['crops']))]
  np.testing.assert_array_equal(*outputs['silhouette'])
  assert np.abs(outputs['rgb'][0] - outputs['rgb'][1]).max() > 1e-5  # (random weights: ~2e-4)
