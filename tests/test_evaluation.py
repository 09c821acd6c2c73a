"""Evaluation metrics against hand-computed values."""

import json

import numpy as np
import pytest

from banet_jax import evaluation
from banet_jax.model.banet import layout_for
from banet_jax.skeleton.models import DEFAULT_MODEL_PATH


@pytest.fixture(scope='module')
def layout():
  return layout_for(DEFAULT_MODEL_PATH)


def _gt(layout, n=4):
  skel = layout.skeleton
  coords = np.tile(skel.default_coordinates, (n, 1)).astype(np.float64)
  scales = np.ones((n, len(skel.body_names), 3))
  return coords, scales


def test_perfect_prediction_has_zero_error(layout):
  coords, scales = _gt(layout)
  errors = evaluation.frame_metrics(layout, coords, scales, coords, scales)
  summary = evaluation.summarize(layout, errors)
  assert summary['coordinate_mae_deg'] == 0 and summary['mpjpe_mm'] < 1e-3
  assert summary['scale_mae'] == 0 and summary['frames'] == 4


def test_hand_computed_errors(layout):
  skel = layout.skeleton
  coords, scales = _gt(layout)
  rot, _ = evaluation.evaluated_coordinates(layout)
  knee = skel.coordinate_names.index('knee_angle_r')
  pred = coords.copy()
  pred[:, knee] += np.radians(10.0)
  pred[:, skel.coordinate_names.index('pelvis_tx')] += 0.5  # global: not counted anywhere
  pred_scales = scales.copy()
  pred_scales[:, skel.body_names.index('hand_r'), 0] += 0.1  # moves only com_hand_r
  summary = evaluation.summarize(layout, evaluation.frame_metrics(layout, pred, pred_scales,
                                                                  coords, scales))
  assert summary['coordinate_mae_deg_per_coordinate']['knee_angle_r'] == pytest.approx(10.0)
  assert summary['coordinate_mae_deg'] == pytest.approx(10.0 / len(rot))
  assert summary['scale_mae'] == pytest.approx(0.1 / scales[0].size)
  # The right knee moves the right shank, foot and toes points; the hand scale its COM.
  per_point = summary['mpjpe_mm_per_point']
  assert per_point['joint_ankle_r'] > 10 and per_point['joint_ankle_l'] < 1e-3
  assert per_point['com_hand_r'] > 0 and per_point['com_hand_l'] < 1e-3
  assert 'pelvis_tx' not in summary['coordinate_mae_deg_per_coordinate']


def test_angle_differences_wrap(layout):
  skel = layout.skeleton
  coords, scales = _gt(layout, 1)
  c = skel.coordinate_names.index('pelvis_rotation')
  gt, pred = coords.copy(), coords.copy()
  gt[:, c], pred[:, c] = np.radians(179.0), np.radians(-179.0)
  errors = evaluation.frame_metrics(layout, pred, scales, gt, scales)
  assert np.degrees(errors['coordinate_abs_error'][0, c]) == pytest.approx(2.0)


def test_mean_pose_baseline(layout):
  skel = layout.skeleton
  coords, scales = _gt(layout, 2)
  c = skel.coordinate_names.index('pelvis_rotation')
  coords[:, c] = np.radians([170.0, -170.0])
  coords[:, skel.coordinate_names.index('pelvis_ty')] = [0.9, 1.1]
  scales[1] *= 1.2
  mean_q, mean_s = evaluation.mean_pose(layout, coords, scales)
  assert abs(np.degrees(mean_q[c])) == pytest.approx(180.0)
  assert mean_q[skel.coordinate_names.index('pelvis_ty')] == 0.0  # never predicted
  np.testing.assert_allclose(mean_s, 1.1)


def test_report_and_plots(layout, tmp_path):
  coords, scales = _gt(layout)
  summary = evaluation.summarize(layout, evaluation.frame_metrics(layout, coords, scales,
                                                                  coords, scales))
  paths = evaluation.write_report(tmp_path, {'BANet': summary, 'mean-pose baseline': summary})
  table = open(paths['markdown']).read()
  assert '| metric | BANet | mean-pose baseline |' in table and 'knee_angle_r (deg)' in table
  assert json.load(open(paths['json']))['BANet']['frames'] == 4
  times = np.arange(4) / 60
  evaluation.plot_angle_curves(tmp_path / 'curves.png', times, layout.skeleton.coordinate_names,
                               coords, {'BANet': coords}, ['knee_angle_r', 'hip_flexion_r'])
  evaluation.plot_coordinate_errors(tmp_path / 'errors.png', {'BANet': summary})
  assert (tmp_path / 'curves.png').stat().st_size > 1000
  assert (tmp_path / 'errors.png').stat().st_size > 1000


def test_shape_mismatch_is_an_error(layout):
  coords, scales = _gt(layout)
  with pytest.raises(ValueError, match='shapes differ'):
    evaluation.frame_metrics(layout, coords[:2], scales, coords, scales)


def test_select_clips_by_motion_family():
  """`launch.eval --families`: the clips of the named families, in split order, capped by
  max_clips; a clear error for clips without families or when none matches."""
  source = [{'motion_family': np.asarray(f.encode())} for f in
            ('walking', 'balance', 'squat', 'balance_reach', 'balance')]
  assert evaluation.select_clips(source) == [0, 1, 2, 3, 4]
  assert evaluation.select_clips(source, max_clips=2) == [0, 1]
  assert evaluation.select_clips(source, ['balance', 'balance_reach']) == [1, 3, 4]
  assert evaluation.select_clips(source, ['balance'], max_clips=1) == [1]
  with pytest.raises(ValueError, match='no clip of families'):
    evaluation.select_clips(source, ['kneeling'])
  with pytest.raises(ValueError, match='no motion_family'):
    evaluation.select_clips([{'coordinates': np.zeros((2, 3))}], ['walking'])


def test_coordinate_tracking_against_hand_computed_values(layout, tmp_path):
  """r and spread ratio per coordinate: a prediction that follows the truth at half its
  amplitude (r 1, ratio 0.5), one that runs against it (r -1), a constant answer (r
  None, ratio 0), and a series that crosses +-180 deg (wrapped, so r 1, ratio 1)."""
  names = layout.skeleton.coordinate_names
  gt, _ = _gt(layout, 50)
  pred = gt.copy()
  wave = np.radians(20.0) * np.sin(np.linspace(0.0, 6.0, 50))
  knee, elbow, hip, rot = (names.index(n) for n in
                           ('knee_angle_r', 'elbow_flex_r', 'hip_flexion_r', 'pelvis_rotation'))
  gt[:, knee] += wave
  pred[:, knee] += 0.5 * wave + np.radians(7.0)  # an offset changes neither figure
  gt[:, elbow] += wave
  pred[:, elbow] -= wave
  gt[:, hip] += wave  # pred[:, hip] stays constant
  gt[:, rot] = np.pi + wave
  pred[:, rot] = np.pi + wave
  tracking = evaluation.coordinate_tracking(layout, pred, gt)
  assert tracking['knee_angle_r']['r'] == pytest.approx(1.0)
  assert tracking['knee_angle_r']['spread_ratio'] == pytest.approx(0.5)
  assert tracking['knee_angle_r']['truth_sd_deg'] == pytest.approx(np.degrees(wave.std()))
  assert tracking['elbow_flex_r']['r'] == pytest.approx(-1.0)
  assert tracking['hip_flexion_r']['r'] is None
  assert tracking['hip_flexion_r']['spread_ratio'] == pytest.approx(0.0)
  assert tracking['pelvis_rotation']['r'] == pytest.approx(1.0)
  assert tracking['pelvis_rotation']['spread_ratio'] == pytest.approx(1.0)
  assert tracking['lumbar_bending']['spread_ratio'] is None  # the truth never moves
  assert 'pelvis_tx' not in tracking  # translations are not rotational coordinates
  with pytest.raises(ValueError, match='two'):
    evaluation.coordinate_tracking(layout, pred[:1], gt[:1])
  summary = evaluation.summarize(layout, evaluation.frame_metrics(
      layout, pred, np.ones((50, len(layout.skeleton.body_names), 3)),
      gt, np.ones((50, len(layout.skeleton.body_names), 3))))
  summary['tracking'] = tracking
  table = open(evaluation.write_report(tmp_path, {'BANet': summary})['markdown']).read()
  assert '| knee_angle_r | 1.00 | 0.50 |' in table and '| hip_flexion_r | - | 0.00 |' in table
