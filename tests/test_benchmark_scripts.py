"""The prepared benchmark scripts run and report what they say (tiny configurations).

Their figures are not checked here (benchmarks print tables; the project keeps timing out of
tests): only that each script runs end to end and writes the rows it documents.
"""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]


def _run(args, timeout=900):
  env = dict(os.environ, PYTHONPATH=str(ROOT))
  return subprocess.run([sys.executable, *args], cwd=ROOT, env=env, capture_output=True,
                        text=True, timeout=timeout, check=False)


def _suite(tmp_path, rows):
  out = _run(['benchmarks/gpu_suite.py', '--smoke', '--dtypes=float32', '--train_steps=1',
              f'--rows={rows}', f'--out_dir={tmp_path}'])
  assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
  table = [l for l in out.stdout.splitlines() if l.startswith('| ') and '---' not in l]
  assert table[0].startswith('| row | configuration |')
  return table[1:], out.stdout


@pytest.mark.slow
def test_gpu_suite_smoke_inference_and_skeleton_rows(tmp_path):
  """The suite's inference row (a clip streamed through a stage-2 Predictor in frame
  batches, in a child process) and its skeleton row, on the CPU."""
  rows, stdout = _suite(tmp_path, 'stream,skeleton_fk')
  assert 'SMOKE' in stdout and 'not run' not in stdout
  assert [r.split(' | ')[0] for r in rows] == ['| inference, stage 2', '| skeleton FK (cpu)']
  stream = json.loads((tmp_path / 'stream_float32.json').read_text())
  assert len(stream) == 1 and stream[0]['frames'] == 24 and stream[0]['stage'] == 2
  assert stream[0]['frames_per_s'] > 0 and stream[0]['peak_gib'] > 0
  fk = json.loads((tmp_path / 'skeleton_fk.json').read_text())
  assert fk[0]['model'] == 'banet_fullbody.osim' and fk[0]['jax_poses_per_s']['64'] > 0


@pytest.mark.slow
def test_gpu_suite_smoke_training_rows(tmp_path):
  """Both training rows (stage 1 and stage 2 with the frozen parts), on the CPU."""
  rows, _ = _suite(tmp_path, 'train')
  assert [r.split(' | ')[0] for r in rows] == ['| stage-1 training step',
                                               '| stage-2 training step']
  for stage in (1, 2):
    (result,) = json.loads((tmp_path / f'train_stage{stage}_float32.json').read_text())
    assert result['stage'] == stage and result['steps_per_sec'] > 0


def test_gpu_suite_deadline_lists_what_did_not_run(tmp_path):
  """The default suite's check of the script: its rows in their order, none started past
  the deadline, and the table still printed."""
  out = _run(['benchmarks/gpu_suite.py', '--smoke', '--deadline_s=-1', f'--out_dir={tmp_path}'])
  assert out.returncode == 0, out.stderr[-3000:]
  assert 'not run (past --deadline_s=-1): train_stage1_float32, train_stage2_float32, ' \
         'stream_float32, skeleton_fk, train_stage1_bfloat16' in out.stdout


_SIM_TO_REAL_HELPERS = r'''
import numpy as np
from benchmarks.sim_to_real import change_appearance, nearest_pose_deg
rng = np.random.default_rng(0)
crops = rng.integers(0, 256, (2, 3, 16, 16, 3), dtype=np.uint8)  # (views, frames, S, S, 3)
masks = np.zeros((2, 3, 16, 16), np.uint8)
masks[..., 4:12, 5:11] = 1
on = masks != 0
stats = (np.array([98.0, 82.0, 81.0]), np.array([54.0, 50.0, 54.0]))
assert change_appearance(crops, masks, 'real', stats) is not None
np.testing.assert_array_equal(change_appearance(crops, masks, 'real', stats), crops)
for variant in ('grey', 'silhouette', 'odah_stats'):
  out = change_appearance(crops, masks, variant, stats)
  assert out.dtype == np.uint8 and out.shape == crops.shape
  np.testing.assert_array_equal(out[~on], crops[~on])  # off the mask: untouched
grey = change_appearance(crops, masks, 'grey', stats)[on]
assert np.all(grey[:, 0] == grey[:, 1]) and np.all(grey[:, 1] == grey[:, 2])
np.testing.assert_array_equal(change_appearance(crops, masks, 'silhouette', stats)[on],
                              np.broadcast_to([98, 82, 81], grey.shape))
matched = change_appearance(crops, masks, 'odah_stats', stats).astype(float)
for v in range(2):
  for f in range(3):
    pixels = matched[v, f][on[v, f]]
    np.testing.assert_allclose(pixels.mean(0), stats[0], atol=1.0)
    np.testing.assert_allclose(pixels.std(0), stats[1], atol=1.5)
try:
  change_appearance(crops, masks, 'sepia', stats)
  raise SystemExit('no error for an unknown variant')
except ValueError as e:
  assert 'sepia' in str(e)
poses = rng.normal(0, 0.5, (300, 5))
queries = rng.normal(0, 0.5, (70, 5))
brute = np.degrees(np.abs(queries[:, None] - poses[None]).mean(-1).min(1))
np.testing.assert_allclose(nearest_pose_deg(queries, poses, block=16), brute)
assert nearest_pose_deg(poses[:3], poses).max() == 0.0
import pathlib, tempfile
from PIL import Image
from benchmarks.sim_to_real import plot_pair_curves
ref = rng.normal(0, 0.3, (40, 4))
per_model = {m: {p: ref + rng.normal(0, 0.1, ref.shape) for p in ('cam01+cam04', 'cam02+cam03')}
             for m in ('a', 'b')}
path = pathlib.Path(tempfile.mkdtemp()) / 'curves.jpg'
plot_pair_curves(path, 60.0, ['q0', 'q1', 'q2', 'q3'], ref, per_model, ['q1', 'q3'])
with Image.open(path) as im:  # two models x two coordinates at 80 dpi, no PNG left behind
  assert im.format == 'JPEG' and im.size == (688, 400), (im.format, im.size)
assert sorted(p.name for p in path.parent.iterdir()) == ['curves.jpg']
print('ok')
'''


def test_sim_to_real_appearance_variants_and_pose_coverage():
  """benchmarks/sim_to_real.py's --appearance variants change only the person's pixels
  (grey: equal channels; silhouette: ODAH's mean colour; odah_stats: ODAH's mean and
  standard deviation per view and frame), and its pose-coverage distance is the brute-force
  nearest neighbour, and curves.jpg has a panel per model and coordinate. (A subprocess:
  the script defines absl flags at import.)"""
  out = _run(['-c', _SIM_TO_REAL_HELPERS], timeout=300)
  assert out.returncode == 0 and out.stdout.strip().endswith('ok'), out.stdout + out.stderr


_RIG_GEOMETRY = r'''
import numpy as np
from benchmarks.rig_sensitivity import camera_geometry
# A body centred at (0, 1, 0) (y up) and two cameras: one 3 m in front at its height, one
# 4 m away horizontally and 2 m higher (any orientation: only the centre -R^T t counts).
centre = np.array([0.0, 1.0, 0.0])
markers = centre + np.random.default_rng(0).normal(0, 0.01, (5, 7, 3))
markers -= markers.mean(axis=(0, 1)) - centre
c, s = np.cos(0.3), np.sin(0.3)
r = np.array([[c, 0.0, -s], [0.0, 1.0, 0.0], [s, 0.0, c]])
rs = [r, r.T]
ts = [-rr @ np.array(eye) for rr, eye in zip(rs, ((3.0, 1.0, 0.0), (0.0, 3.0, 4.0)))]
geo = camera_geometry({'markers': markers, 'camera_R': np.stack(rs), 'camera_t': np.stack(ts)})
np.testing.assert_allclose(geo, [[0.0, 3.0], [np.degrees(np.arctan2(2, 4)), np.hypot(2, 4)]],
                           atol=1e-9)
print('ok')
'''


def test_rig_sensitivity_camera_geometry():
  """benchmarks/rig_sensitivity.py's camera elevation (deg above the body centre) and
  distance (m) on two cameras placed by hand."""
  out = _run(['-c', _RIG_GEOMETRY], timeout=300)
  assert out.returncode == 0 and out.stdout.strip().endswith('ok'), out.stdout + out.stderr
