"""Tests of the procedural motion library (odah_tfds/motions).

Default tests sample one short clip per family (module-scoped, reused by several
checks); the FK is compiled once for the whole module. `--runslow` adds sweeps over
more seeds, longer clips and scaled subjects.
"""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest

from banet_jax.skeleton import load_osim
from banet_jax.skeleton.models import project_skeleton
from odah_tfds.motions import (FAMILIES, LIMITS, Motion, balance, curves, kinematics, measure,
                               sample_any, sample_motion, violations)
from odah_tfds.motions import plausibility, procedural
from odah_tfds.motions.procedural import ODAH_1_FAMILIES

NUM_FRAMES = 120
GROUNDED = ('walking', 'running', 'squat', 'lunge', 'sit_to_stand', 'stepping',
            'jumping_jacks', 'arm_flexion', 'arm_abduction', 'reaching', 'trunk_flexion',
            'trunk_rotation', 'jumping', 'balance', 'balance_reach')


@pytest.fixture(scope='module')
def skel():
  return project_skeleton()


@pytest.fixture(scope='module')
def clips(skel):
  """One clip of every family (seed 0, NUM_FRAMES frames at 60 fps)."""
  return {name: sample_motion(name, 0, num_frames=NUM_FRAMES, skeleton=skel)
          for name in FAMILIES}


@pytest.fixture(scope='module')
def numbers(clips, skel):
  return {name: measure(m, skel) for name, m in clips.items()}


def test_at_least_eleven_families_with_the_required_movements():
  assert len(FAMILIES) >= 11
  for name in ('walking', 'running', 'squat', 'sit_to_stand', 'lunge', 'jumping_jacks',
               'arm_flexion', 'arm_abduction', 'reaching', 'trunk_flexion', 'trunk_rotation',
               'stepping', 'jumping', 'balance'):
    assert name in FAMILIES
  assert set(LIMITS) == set(FAMILIES)


def test_default_families_are_those_of_odah_1(monkeypatch):
  """families=None keeps meaning the 13 families of the first release, in registry
  order, so that existing dataset configs draw the same family for the same seed."""
  assert ODAH_1_FAMILIES == (
      'walking', 'running', 'squat', 'sit_to_stand', 'lunge', 'jumping_jacks', 'arm_flexion',
      'arm_abduction', 'reaching', 'trunk_flexion', 'trunk_rotation', 'stepping', 'jumping')
  assert tuple(FAMILIES)[:len(ODAH_1_FAMILIES)] == ODAH_1_FAMILIES
  assert 'balance' in FAMILIES and 'balance' not in ODAH_1_FAMILIES
  # The family sample_any draws for a seed (clip building stubbed out): one draw over
  # the 13, as before balance existed.
  monkeypatch.setattr(procedural, 'sample_motion', lambda family, gen, **kwargs: family)
  for seed in range(40):
    expected = ODAH_1_FAMILIES[int(np.random.default_rng(seed).choice(13))]
    assert sample_any(np.random.default_rng(seed)) == expected
  assert sample_any(np.random.default_rng(0), families=['balance']) == 'balance'


@pytest.mark.parametrize('name', sorted(FAMILIES))
def test_every_family_samples(clips, skel, name):
  m = clips[name]
  assert isinstance(m, Motion)
  assert m.family == name and m.fps == 60.0 and m.seed == 0
  assert m.coordinates.shape == (NUM_FRAMES, 39)
  assert m.coordinates.dtype == np.float64
  assert m.coordinate_names == tuple(skel.coordinate_names)
  assert np.all(np.isfinite(m.coordinates))
  json.dumps(m.params)  # JSON-serialisable
  assert 'rng_state' in m.params


@pytest.mark.parametrize('name', sorted(FAMILIES))
def test_ranges_and_knee_coupler(numbers, name):
  assert numbers[name]['range_excess'] == 0.0
  assert numbers[name]['knee_beta_error'] == 0.0


@pytest.mark.parametrize('name', sorted(FAMILIES))
def test_smooth(numbers, name):
  lim = LIMITS[name]
  assert numbers[name]['max_angular_speed'] <= lim['max_speed']
  assert numbers[name]['max_angular_accel'] <= lim['max_accel']


@pytest.mark.parametrize('name', GROUNDED)
def test_feet_on_the_floor_without_skating(numbers, name):
  n, lim = numbers[name], LIMITS[name]
  assert n['penetration'] <= lim['penetration']
  assert n['float_height'] <= lim['float_height']
  assert n['slide_mean'] <= lim['slide_mean']
  assert n['stance_fraction'] > 0.2  # the feet do bear weight
  assert not violations(name, n)


@pytest.mark.parametrize('name', ['walking', 'running'])
def test_gait_progresses_forward_at_the_sampled_speed(clips, numbers, name):
  speed = clips[name].params['speed']
  assert numbers[name]['forward_speed'] == pytest.approx(speed, rel=0.03)
  assert abs(numbers[name]['lateral_speed']) < 0.05 * speed


def test_running_has_flight_walking_has_none(clips):
  assert clips['running'].params['flight_frames']
  assert not clips['walking'].params['flight_frames']


def test_gait_joint_ranges_are_normative(clips, skel):
  """Emergent walking angles near published normal ranges (Winter 2009)."""
  q = np.degrees(clips['walking'].coordinates)
  hip = q[:, skel.coordinate_index('hip_flexion_r')]
  knee = q[:, skel.coordinate_index('knee_angle_r')]
  ankle = q[:, skel.coordinate_index('ankle_angle_r')]
  assert 20 < hip.max() < 50 and -30 < hip.min() < 0
  assert 45 < knee.max() < 75 and knee.min() < 15
  assert -30 < ankle.min() < 0 and 0 < ankle.max() <= 20
  # Arms swing opposite to the legs.
  arm = q[:, skel.coordinate_index('arm_flex_r')]
  assert np.corrcoef(arm, hip)[0, 1] < -0.5


@pytest.fixture(scope='module')
def balance_clips(clips, skel):
  """The module's balance clip (seed 0, 120 frames: a window ending in the hold) and a
  7 s clip from quiet stance with the arms out that switches legs (seed 7)."""
  return [clips['balance'], sample_motion('balance', 7, num_frames=420, skeleton=skel)]


def _segment_distance(p, a, b):
  """Distances of points p (..., 3) from the segments a-b (..., 3)."""
  ab = b - a
  s = np.clip(np.sum((p - a) * ab, -1) / np.sum(ab * ab, -1), 0.0, 1.0)
  return np.linalg.norm(p - (a + s[..., None] * ab), axis=-1)


def _check_one_leg_holds(m, skel):
  """Asserts, for every hold of a `balance` / `balance_reach` clip, that the support sole
  is static on the floor, the free foot is at least 4 cm up and the centre of mass is over
  the support foot; yields (first, end, support, sole points, free-foot points) per hold."""
  feet = kinematics.foot_contacts(skel).foot
  holds = m.params['single_stance_frames']
  assert holds, m.params
  pts = kinematics.contact_points(skel, m.coordinates)
  com = balance.center_of_mass(skel, m.coordinates)
  for first, end, support in holds:
    sole = pts[first:end, feet == support]  # (T, 6, 3)
    assert np.ptp(sole[..., [0, 2]], axis=0).max() < 1e-3  # static
    free = pts[first:end, feet != support]
    assert free[..., 1].min() > 0.04  # lifted by at least 4 cm (designed: from 5 cm)
    # Centre of mass over the foot: near its heel-to-ball line (horizontal plane).
    heel, ball = sole[:, :2].mean(axis=1), sole[:, 2:4].mean(axis=1)
    xz = [0, 2]
    assert _segment_distance(com[first:end][:, xz], heel[:, xz], ball[:, xz]).max() < 0.04
    yield first, end, support, sole, free


def test_balance_stands_on_one_leg(balance_clips, skel):
  """In every hold the support sole is flat and static on the floor, the free foot is
  in the air clear of the support leg, the centre of mass is over the support foot."""
  for m in balance_clips:
    pos, _ = kinematics.body_poses(skel, m.coordinates)
    for first, end, support, sole, free in _check_one_leg_holds(m, skel):
      assert end - first >= 30
      assert np.abs(sole[..., 1]).max() < plausibility.STANCE_HEIGHT  # flat: all 6 down
      assert free[..., 1].min(axis=1).max() < 0.45
      # The free foot, ankle and knee stay clear of the support leg's bones (axes).
      s, f = kinematics.SIDES[support], kinematics.SIDES[1 - support]
      hip, knee, ankle = (pos[first:end, None, skel.body_index(f'{b}_{s}')]
                          for b in ('femur', 'tibia', 'talus'))
      probes = np.concatenate(
          [free, pos[first:end, [skel.body_index(f'tibia_{f}'), skel.body_index(f'talus_{f}')]]],
          axis=1)
      gap = np.minimum(_segment_distance(probes, hip, knee),
                       _segment_distance(probes, knee, ankle))
      assert gap.min() > 0.06
  switched = balance_clips[1]
  assert 'switch_at_s' in switched.params and switched.params['time_offset_s'] == 0.0
  support = [h[2] for h in switched.params['single_stance_frames']]
  assert support == [support[0], 1 - support[0]]


def test_balance_arms_out_in_their_sampled_range(balance_clips, skel):
  m = balance_clips[1]
  p = m.params
  assert p['arms'] == 'out'
  margin = p['arm_wave_deg'] + np.sqrt(6.0) * p['noise_deg'] + 1e-6  # waving + style noise
  for first, end, _ in p['single_stance_frames']:
    for s in kinematics.SIDES:
      abduction = -np.degrees(m.coordinates[first:end, skel.coordinate_index(f'arm_add_{s}')])
      assert 60.0 - margin <= abduction.min() and abduction.max() <= 100.0 + margin
      elbow = np.degrees(m.coordinates[first:end, skel.coordinate_index(f'elbow_flex_{s}')])
      assert elbow.max() <= 30.0 + np.sqrt(6.0) * p['noise_deg'] + 1e-6


def test_balance_reach_leans_in_its_sampled_ranges_and_stands_on_one_leg(skel):
  """`balance_reach`: `balance`'s mechanics (support sole flat and static, free foot up,
  centre of mass over the support foot) with the trunk leaning and the pelvis listing
  by the sampled amounts; `balance`'s own draws are untouched (same seed, same clip)."""
  idx = skel.coordinate_index
  for seed in (2, 4):
    m = sample_motion('balance_reach', seed, num_frames=300, skeleton=skel)
    p = m.params
    assert p['postures'][0]['kind'] in balance.REACH_POSTURES
    assert -30.0 <= p['pelvis_tilt_deg'] <= -3.0 and -5.0 <= p['pelvis_hike_deg'] <= 28.0
    assert 0.0 <= p['reach_depth'] <= 0.6
    assert not violations('balance_reach', measure(m, skel))
    deg = np.degrees(m.coordinates)
    for first, end, support, _, _ in _check_one_leg_holds(m, skel):
      # The mean lean, breathing by reach_depth, plus wobble (pelvis: 2.4 x its
      # wobble; the style noise) within a margin.
      margin = 2.4 * p['pelvis_wobble_deg'] + np.sqrt(6.0) * p['noise_deg'] + 1.0
      tilt = deg[first:end, idx('pelvis_tilt')]
      assert tilt.max() <= (1 - p['reach_depth']) * p['pelvis_tilt_deg'] + margin
      assert tilt.min() >= p['pelvis_tilt_deg'] - margin
      sign = 1.0 if support == 0 else -1.0  # + pelvis_list lifts the left side
      hike = sign * deg[first:end, idx('pelvis_list')]
      lo, hi = sorted([p['pelvis_hike_deg'], (1 - p['reach_depth']) * p['pelvis_hike_deg']])
      assert lo - margin <= hike.min() and hike.max() <= hi + margin
  # 'hip_out' (seed 6: the right hand on the hip): that elbow held at its sampled
  # angle, the arm down by the side; the other arm raised out.
  m = sample_motion('balance_reach', 6, num_frames=300, skeleton=skel)
  p, deg = m.params, np.degrees(m.coordinates)
  assert p['arms'] == 'hip_out' and p['hip_hand_side'] == 0
  assert 70.0 <= p['hip_hand_elbow_deg'] <= 110.0
  noise = np.sqrt(6.0) * p['noise_deg'] + 0.5
  np.testing.assert_allclose(deg[:, idx('elbow_flex_r')], p['hip_hand_elbow_deg'], atol=noise)
  np.testing.assert_allclose(deg[:, idx('arm_add_r')], -35.0, atol=noise)
  assert deg[:, idx('arm_add_l')].min() < -60.0
  assert not violations('balance_reach', measure(m, skel))
  # 'bent_out' (seeds 1 and 3: the right, then the left arm bent): once the arms are up
  # (the last 60 frames are in the hold), the bent arm is at its sampled elbow, rotation
  # and flexion (plus the style noise) and abduction (plus half the wave, <= 0.5 x 2.4 x
  # 20 deg); the forearm points forward to up, the hand above the elbow when the humerus
  # is turned out by more than 45 deg; the other arm is out with a near-straight elbow.
  for seed, side in ((1, 'r'), (3, 'l')):
    m = sample_motion('balance_reach', seed, num_frames=300, skeleton=skel)
    p, deg = m.params, np.degrees(m.coordinates[-60:])
    other = 'l' if side == 'r' else 'r'
    assert p['arms'] == 'bent_out' and 'rl'[p['bent_arm_side']] == side
    assert 60.0 <= p['bent_arm_elbow_deg'] <= 120.0
    assert -70.0 <= p['bent_arm_rotation_deg'] <= -10.0
    assert 40.0 <= p['bent_arm_abduction_deg'] <= 90.0
    assert -20.0 <= p['bent_arm_flexion_deg'] <= 30.0
    noise = np.sqrt(6.0) * p['noise_deg'] + 0.5
    for name, key in (('elbow_flex', 'bent_arm_elbow_deg'), ('arm_rot', 'bent_arm_rotation_deg'),
                      ('arm_flex', 'bent_arm_flexion_deg')):
      np.testing.assert_allclose(deg[:, idx(f'{name}_{side}')], p[key], atol=noise)
    np.testing.assert_allclose(-deg[:, idx(f'arm_add_{side}')], p['bent_arm_abduction_deg'],
                               atol=noise + 24.0)
    assert deg[:, idx(f'elbow_flex_{other}')].max() <= 30.0 + noise
    assert -deg[:, idx(f'arm_add_{other}')].min() >= 60.0 - 24.0 - noise
    pos, _ = kinematics.body_poses(skel, m.coordinates[-1])
    elbow, hand = pos[skel.body_index(f'ulna_{side}')], pos[skel.body_index(f'hand_{side}')]
    torso = pos[skel.body_index('torso')]
    assert hand[0] > torso[0]  # in front of the trunk (the subject faces +x)
    if p['bent_arm_rotation_deg'] < -45.0:
      assert hand[1] > elbow[1]
    assert not violations('balance_reach', measure(m, skel))
  a = sample_motion('balance', 5, num_frames=64, skeleton=skel)
  assert 'reach_depth' not in a.params and 'hip_hand_side' not in a.params
  np.testing.assert_array_equal(
      a.coordinates, sample_motion('balance', 5, num_frames=64, skeleton=skel).coordinates)
  r = balance.sample_balance_reach(np.random.default_rng(5))
  b = balance.sample_balance(np.random.default_rng(5))
  assert r['quiet_s'] == b['quiet_s'] and r['support_side'] == b['support_side']


def test_balance_is_deterministic_and_windows_short_clips(skel):
  a = sample_motion('balance', 3, num_frames=32, skeleton=skel)
  b = sample_motion('balance', 3, num_frames=32, skeleton=skel)
  c = sample_motion('balance', 4, num_frames=32, skeleton=skel)
  assert np.array_equal(a.coordinates, b.coordinates)
  assert dict(a.params, build_seconds=0) == dict(b.params, build_seconds=0)
  assert not np.allclose(a.coordinates, c.coordinates)
  # A 32-frame clip is a window of the whole sequence (quiet stance .. hold), placed
  # by the sampled `window`; only clips long enough for two holds switch legs.
  params = balance.sample_balance(np.random.default_rng(3))
  make_plan = balance._plan  # pylint: disable=protected-access
  plan = make_plan(dict(params, window=1.0), 32 / 60.0)
  assert plan.offset > 1.0 and plan.switch_at is None
  assert plan.offset == pytest.approx(a.params['time_offset_s'] / params['window'])
  long_plan = make_plan(dict(params, switch=True), 9.0)
  assert long_plan.offset == 0.0 and long_plan.switch_at is not None
  assert make_plan(dict(params, switch=True), 4.0).switch_at is None


def test_start_at_origin_facing_forward(clips, skel):
  for name, m in clips.items():
    q = m.coordinates
    assert q[0, skel.coordinate_index('pelvis_tx')] == 0.0, name
    assert q[0, skel.coordinate_index('pelvis_tz')] == 0.0, name
    if name == 'turning':  # turns up to 330 deg, centred on +x (turning.py docstring;
      continue             # tests/test_motions_turning_kneeling.py checks that)
    assert abs(q[:, skel.coordinate_index('pelvis_rotation')]).max() < np.radians(60), name


def test_deterministic_per_seed(skel):
  a = sample_motion('walking', 3, num_frames=60, skeleton=skel)
  b = sample_motion('walking', 3, num_frames=60, skeleton=skel)
  c = sample_motion('walking', 4, num_frames=60, skeleton=skel)
  assert np.array_equal(a.coordinates, b.coordinates)
  assert not np.allclose(a.coordinates, c.coordinates)
  d = sample_motion('arm_flexion', 3, num_frames=60, skeleton=skel)
  e = sample_motion('arm_flexion', 3, num_frames=60, skeleton=skel)
  assert np.array_equal(d.coordinates, e.coordinates)


def test_generator_state_is_recorded(skel):
  gen = np.random.default_rng(11)
  a = sample_motion('squat', gen, num_frames=60, skeleton=skel)
  assert a.seed is None
  replay = np.random.default_rng()
  replay.bit_generator.state = a.params['rng_state']
  b = sample_motion('squat', replay, num_frames=60, skeleton=skel)
  assert np.array_equal(a.coordinates, b.coordinates)


def test_duration_and_default_lengths(skel):
  m = sample_motion('trunk_rotation', 1, duration=1.5, fps=30.0, skeleton=skel)
  assert m.num_frames == 45 and m.fps == 30.0 and m.duration == pytest.approx(1.5)
  m = sample_motion('trunk_rotation', 1, skeleton=skel)
  lo, hi = FAMILIES['trunk_rotation'].duration_s
  assert lo - 1e-9 <= m.duration <= hi + 1e-9


def test_heading_turns_the_whole_clip(skel):
  a = sample_motion('walking', 5, num_frames=90, skeleton=skel)
  b = sample_motion('walking', 5, num_frames=90, skeleton=skel, heading_deg=90.0)
  na, nb = measure(a, skel), measure(b, skel)
  # +90 deg turns +x to -z: the subject walks to its left.
  assert nb['lateral_speed'] == pytest.approx(-na['forward_speed'], rel=1e-6)
  assert nb['forward_speed'] == pytest.approx(na['lateral_speed'], abs=1e-9)
  for key in ('penetration', 'slide_mean', 'float_height', 'max_angular_speed'):
    assert nb[key] == pytest.approx(na[key], abs=1e-6)
  idx = [skel.coordinate_index(n) for n in ('pelvis_tilt', 'pelvis_list', 'pelvis_rotation',
                                            'pelvis_tx', 'pelvis_ty', 'pelvis_tz')]
  assert np.allclose(np.delete(a.coordinates, idx, 1), np.delete(b.coordinates, idx, 1))


def test_scaled_subject_is_planted(skel):
  scales = np.full((skel.num_bodies, 3), 1.1)
  for name in ('walking', 'squat'):
    m = sample_motion(name, 2, num_frames=90, skeleton=skel, scales=scales)
    assert m.params['scales'] == scales.tolist()
    n = measure(m, skel)  # reads the scales from the params
    assert not violations(name, n), (name, n)
    plain = measure(m, skel, scales=np.ones_like(scales))
    assert plain['float_height'] > 0.03  # the unscaled model would float: scales matter


def test_fk_is_compiled_once(clips, skel, project_model_path, tmp_path):
  del clips  # sampled above with clips of several lengths
  sample_motion('stepping', 9, num_frames=37, skeleton=skel)
  # Reloading the file returns the cached skeleton; a copy of it elsewhere is another
  # object of equal content, and reuses the compiled FK.
  assert load_osim(project_model_path) is skel
  copy = tmp_path / 'copy.osim'
  copy.write_bytes(project_model_path.read_bytes())
  again = load_osim(copy)
  assert again is not skel and again == skel and again.source == str(copy)
  sample_motion('squat', 9, num_frames=23, skeleton=again)
  assert kinematics.fk_compile_count(skel) == 1
  assert kinematics.fk_compile_count(again) == 1


def test_sample_any(skel):
  m = sample_any(4, num_frames=30, skeleton=skel)
  assert m.family in FAMILIES and m.seed == 4
  m = sample_any(np.random.default_rng(0), families=['squat', 'lunge'], weights=[0, 1],
                 num_frames=30, skeleton=skel)
  assert m.family == 'lunge'
  with pytest.raises(KeyError, match='unknown motion families'):
    sample_any(0, families=['dancing'])
  with pytest.raises(ValueError, match='weights'):
    sample_any(0, families=['squat'], weights=[-1])


def test_bad_arguments(skel):
  with pytest.raises(KeyError, match='unknown motion family'):
    sample_motion('dancing', 0)
  with pytest.raises(ValueError, match='not both'):
    sample_motion('squat', 0, num_frames=10, duration=1.0)
  with pytest.raises(ValueError, match='scales must have shape'):
    sample_motion('squat', 0, num_frames=10, scales=np.ones((3, 3)))
  with pytest.raises(ValueError, match='positive'):
    sample_motion('squat', 0, num_frames=10, scales=-np.ones((22, 3)))
  with pytest.raises(TypeError, match='Generator or an int'):
    sample_motion('squat', 'seed', num_frames=10)
  with pytest.raises(ValueError, match='at least 2 frames'):
    sample_motion('squat', 0, num_frames=1)


# ---- Motion record -------------------------------------------------------------------

def _motion(skel, **kw):
  q = np.tile(skel.default_coordinates, (5, 1))
  args = dict(family='test', fps=60.0, coordinates=q, coordinate_names=skel.coordinate_names,
              params={'a': np.float32(1.5), 'b': [np.int64(2)], 'c': {'d': 'x'}}, seed=3)
  args.update(kw)
  return Motion(**args)


def test_motion_helpers_and_round_trips(skel, tmp_path):
  m = _motion(skel)
  assert m.num_frames == 5 and m.duration == pytest.approx(5 / 60)
  assert np.allclose(m.times, np.arange(5) / 60)
  assert m.params == {'a': 1.5, 'b': [2], 'c': {'d': 'x'}}
  assert np.allclose(m.coordinate('pelvis_ty'), skel.default_coordinates[4])
  with pytest.raises(KeyError):
    m.coordinate('nope')
  with pytest.raises(ValueError):
    m.coordinates[0, 0] = 1.0  # read-only
  again = Motion.from_json(m.to_json())
  assert np.array_equal(again.coordinates, m.coordinates)
  assert (again.family, again.fps, again.params, again.seed) == (m.family, m.fps, m.params, m.seed)
  m.save_npz(tmp_path / 'm.npz')
  back = Motion.load_npz(tmp_path / 'm.npz')
  assert np.array_equal(back.coordinates, m.coordinates)
  assert back.coordinate_names == m.coordinate_names and back.params == m.params


def test_sampled_motion_round_trip(clips, tmp_path):
  m = clips['running']
  back = Motion.from_dict(json.loads(json.dumps(m.to_dict())))
  assert np.array_equal(back.coordinates, m.coordinates)
  assert back.params == m.params


def test_motion_validation(skel):
  with pytest.raises(ValueError, match='shape'):
    _motion(skel, coordinates=np.zeros((5, 38)))
  bad = np.tile(skel.default_coordinates, (5, 1))
  bad[2, 3] = np.nan
  with pytest.raises(ValueError, match='non-finite'):
    _motion(skel, coordinates=bad)
  with pytest.raises(ValueError, match='fps'):
    _motion(skel, fps=0.0)
  with pytest.raises(TypeError, match='JSON'):
    _motion(skel, params={'x': object()})
  with pytest.raises(ValueError, match='non-finite'):
    _motion(skel, params={'x': float('nan')})
  with pytest.raises(ValueError, match='format_version'):
    Motion.from_dict(dict(_motion(skel).to_dict(), format_version=99))


# ---- building blocks ---------------------------------------------------------------------

def test_foot_contacts_on_the_floor_in_the_default_pose(skel):
  pts = kinematics.contact_points(skel, skel.default_coordinates)
  assert pts.shape == (12, 3)
  assert np.allclose(pts[:, 1], 0.0, atol=1e-9)
  assert np.all(pts[:6, 2] > 0) and np.all(pts[6:, 2] < 0)  # right foot at +z
  geom = kinematics.subject_geometry(skel)
  assert geom.standing_height == pytest.approx(skel.default_coordinates[4], abs=1e-6)


def test_leg_ik_recovers_reachable_poses(skel):
  rng = np.random.default_rng(0)
  legs = kinematics.leg_coordinate_indices(skel)
  q_true = np.tile(skel.default_coordinates, (40, 1))
  q_true[:, legs] = np.radians(rng.uniform([-10, -10, -10, 5, -10, -5], [60, 10, 10, 90, 15, 10],
                                           size=(40, 2, 6)))
  kinematics.sync_knee_beta(skel, q_true)
  pos, rot = kinematics.body_poses(skel, q_true)
  calcn = [skel.body_index('calcn_r'), skel.body_index('calcn_l')]
  q0 = np.tile(skel.default_coordinates, (40, 1))
  q0[:, legs] = np.radians([10, 0, 0, 20, 0, 0])
  w = np.zeros((40, 2, 7))
  w[..., 6] = 1e-3
  res = kinematics.solve_leg_ik(skel, q0, rot[:, calcn], pos[:, calcn], reference_weight=w,
                                soft_limit_weight=0.0)
  assert res.position_error.max() < 1e-8 and res.rotation_error.max() < 1e-8
  assert np.allclose(res.q[:, legs], q_true[:, legs], atol=1e-7)


def test_plant_root_keeps_a_stance_foot_fixed(skel):
  """A pure hip flexion swing of one leg: the other foot stays planted."""
  t = np.arange(60) / 60.0
  q = np.tile(skel.default_coordinates, (60, 1))
  q[:, skel.coordinate_index('hip_flexion_l')] = np.radians(30) * np.sin(np.pi * t)
  q[:, skel.coordinate_index('knee_angle_l')] = np.radians(40) * np.sin(np.pi * t)
  q[:, skel.coordinate_index('pelvis_rotation')] = np.radians(10) * np.sin(2 * np.pi * t)
  kinematics.sync_knee_beta(skel, q)
  stance = np.stack([np.ones(60, bool), np.zeros(60, bool)], -1)
  res = kinematics.plant_root(skel, q, 60.0, stance=stance)
  right = res.contacts[:, :6]
  assert np.abs(right[..., 1]).max() < 1e-9  # the right sole stays flat on the floor
  centre = right.mean(axis=1)  # it turns (pelvis yaw) about its centre, which stays put
  assert np.ptp(centre[:, 0]) < 1e-9 and np.ptp(centre[:, 2]) < 1e-9
  assert res.contacts[12:48, 6:, 1].min() > 0.0  # the swinging left foot is off the floor
  assert np.ptp(res.q[:, skel.coordinate_index('pelvis_tx')]) > 0.01  # the root moved


def test_heading_and_pelvis_angles_round_trip(skel):
  rng = np.random.default_rng(1)
  tilt, lst, rot = rng.uniform(-0.5, 0.5, (3, 20))
  back = kinematics.pelvis_angles(kinematics.pelvis_matrix(tilt, lst, rot))
  assert np.allclose(back, (tilt, lst, rot))


def test_curves():
  x = np.linspace(-3, 3, 601)
  y = curves.soft_clip(x, -1.0, 1.0, 0.2)
  assert np.all(y > -1.0) and np.all(y < 1.0)
  inner = np.abs(x) <= 0.8
  assert np.array_equal(y[inner], x[inner])
  assert np.all(np.diff(y) > 0)
  keys_t, keys_v = [0.0, 1.0, 2.5], [0.0, 2.0, -1.0]
  assert np.allclose(curves.keyframe_timeline(keys_t, keys_v, np.array(keys_t)), keys_v)
  v = curves.periodic_keyframes([(0, 1.0), (40, 3.0), (70, -2.0)], np.array([0.0, 1.0, 0.4]))
  assert v[0] == pytest.approx(v[1]) and v[2] == pytest.approx(3.0)
  b = curves.plateau_blend(np.linspace(0, 1, 101))
  assert b[0] == 0.0 and b[-1] == pytest.approx(1.0) and np.all(np.diff(b) >= 0)


def test_no_tensorflow():
  assert 'tensorflow' not in sys.modules


# ---- heavier sweeps (--runslow) ------------------------------------------------------------

@pytest.mark.slow
@pytest.mark.parametrize('name', sorted(FAMILIES))
def test_many_samples_are_plausible(skel, name):
  for seed in range(1, 7):
    m = sample_motion(name, seed, num_frames=300, skeleton=skel)
    n = measure(m, skel)
    assert not violations(name, n), (name, seed, n)
    if name in ('walking', 'running'):
      assert n['forward_speed'] == pytest.approx(m.params['speed'], rel=0.03)


@pytest.mark.slow
@pytest.mark.parametrize('kind', ['tall', 'short', 'proportions'])
def test_scaled_subjects_are_planted(skel, kind):
  rng = np.random.default_rng(5)
  if kind == 'tall':
    scales = np.full((22, 3), 1.12)
  elif kind == 'short':
    scales = np.full((22, 3), 0.88)
  else:  # non-uniform, left = right
    scales = rng.uniform(0.9, 1.1, (22, 3))
    scales[7:13] = scales[1:7]
    scales[18:22] = scales[14:18]
    scales[[3, 9]] = scales[[3, 9], :1]
  for name in FAMILIES:
    m = sample_motion(name, 3, num_frames=240, skeleton=skel, scales=scales)
    n = measure(m, skel)
    assert not violations(name, n), (kind, name, n)


def test_window_is_a_clip_of_its_own(clips, skel):
  m = clips['running']
  w = m.window(40, 32)
  tx, tz = skel.coordinate_index('pelvis_tx'), skel.coordinate_index('pelvis_tz')
  assert w.num_frames == 32 and w.family == 'running' and w.fps == m.fps
  assert w.coordinates[0, tx] == 0.0 and w.coordinates[0, tz] == 0.0
  # Everything but the horizontal translation is the same frames.
  other = [c for c in range(len(skel.coordinate_names)) if c not in (tx, tz)]
  np.testing.assert_array_equal(w.coordinates[:, other], m.coordinates[40:72, other])
  np.testing.assert_allclose(np.diff(w.coordinates[:, tx]), np.diff(m.coordinates[40:72, tx]))
  assert w.params['window_first_frame'] == 40 and w.params['source_frames'] == m.num_frames
  # Flight phases are cut to the window and counted from it.
  expected = [[max(a, 40) - 40, min(b, 72) - 40] for a, b in m.params['flight_frames']
              if min(b, 72) > max(a, 40)]
  assert w.params['flight_frames'] == expected and expected
  with pytest.raises(ValueError, match='not inside'):
    m.window(m.num_frames - 10, 32)


@pytest.mark.slow
def test_windows_of_long_motions_reach_the_repetitions(skel):
  """32 frames sampled at their own length barely leave the rest pose of a slow
  family; random windows of 6-s motions (odah/lab 1.2.0) reach into the repetitions."""
  lumbar = skel.coordinate_index('lumbar_extension')
  short, windowed = [], []
  for seed in range(6):
    short.append(np.degrees(np.abs(sample_motion(
        'trunk_flexion', seed, num_frames=32, skeleton=skel).coordinates[:, lumbar]).max()))
    rng = np.random.default_rng(seed)
    m = sample_motion('trunk_flexion', rng, num_frames=360, skeleton=skel)
    w = m.window(int(rng.integers(360 - 32 + 1)), 32)
    windowed.append(np.degrees(np.abs(w.coordinates[:, lumbar]).max()))
  print(f'max |lumbar_extension| (deg): short {np.round(short, 1)}, '
        f'windowed {np.round(windowed, 1)}')
  assert np.median(windowed) > 2 * np.median(short) + 5
