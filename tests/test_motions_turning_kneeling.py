"""Family-specific tests of the `turning` and `kneeling` motion families.

The generic checks (ranges, smoothness, feet on the floor without skating, JSON
params) run for every family in tests/test_motions.py; these check what each of
the two families is about, on a few clips that show their whole sequence.
"""

from __future__ import annotations

import numpy as np
import pytest

from banet_jax.skeleton.models import project_skeleton
from odah_tfds.motions import FAMILIES, kinematics, kneeling, sample_motion, turning
from odah_tfds.motions.procedural import ODAH_1_FAMILIES


@pytest.fixture(scope='module')
def skel():
  return project_skeleton()


_MODULES = {'turning': turning, 'kneeling': kneeling}


def _sampled_sequence(family, seed):
  """(params, nominal length of the whole sequence in seconds) of `family` for `seed`."""
  params = getattr(_MODULES[family], f'sample_{family}')(np.random.default_rng(seed))
  if family == 'turning':
    _, nominal = turning._plan(params)  # pylint: disable=protected-access
  else:
    nominal = kneeling._times(params)[-1]  # pylint: disable=protected-access
  return params, nominal


def _full_frames(family, seed, fps=60.0):
  """Frames of a clip that shows the whole sequence of `family` for `seed` (the
  params are sampled after the clip length only when no length is given)."""
  return int(np.ceil((_sampled_sequence(family, seed)[1] + 0.3) * fps))


def _yaw(r):
  """Heading (rad) of rotation matrices (..., 3, 3): +x turned towards -z is +."""
  return np.arctan2(-r[..., 2, 0], r[..., 0, 0])


def test_registered_after_balance_not_in_odah_1():
  """Registry order: the 13 of ODAH 1, balance, turning, kneeling, then balance_reach
  (2026-12-07): new families go last, so `list(FAMILIES)` keeps its old prefix."""
  names = list(FAMILIES)
  assert names[names.index('balance') + 1:names.index('balance') + 3] == ['turning', 'kneeling']
  assert 'turning' not in ODAH_1_FAMILIES and 'kneeling' not in ODAH_1_FAMILIES
  assert names[-1] == 'balance_reach' and 'balance_reach' not in ODAH_1_FAMILIES
  assert len(FAMILIES) == 17 and len(ODAH_1_FAMILIES) == 13


@pytest.fixture(scope='module')
def turning_clips(skel):
  return [sample_motion('turning', seed, num_frames=_full_frames('turning', seed),
                        skeleton=skel) for seed in (0, 1)]


def test_turning_turns_by_the_sampled_angle(turning_clips, skel):
  calcn = [skel.body_index('calcn_r'), skel.body_index('calcn_l')]
  rot_i = skel.coordinate_index('pelvis_rotation')
  feet = kinematics.foot_contacts(skel).foot
  for m in turning_clips:
    p = m.params
    assert m.params['time_offset_s'] == 0.0  # the whole sequence
    assert 90.0 <= abs(p['turn_deg']) <= 330.0 and 3 <= p['steps'] <= 6
    _, rot = kinematics.body_poses(skel, m.coordinates)
    # Both feet and the pelvis end turned by the sampled angle (sign = direction).
    feet_turn = np.degrees(np.unwrap(_yaw(rot[:, calcn]), axis=0))
    assert np.abs(feet_turn[-1] - feet_turn[0] - p['turn_deg']).max() < 5.0, p
    pelvis_yaw = np.degrees(np.unwrap(_yaw(rot[:, skel.body_index('pelvis')])))
    assert abs(pelvis_yaw[-1] - pelvis_yaw[0] - p['turn_deg']) < 5.0, p
    assert p['clip_turn_deg'] == pytest.approx(p['turn_deg'], abs=1e-6)
    # The turn is centred: the pelvis heading stays inside the model's +-180 degrees.
    yaw = np.degrees(m.coordinates[:, rot_i])
    assert abs(yaw.max() + yaw.min()) < 8.0 and np.abs(yaw).max() < 180.0
    # Steps: the feet lift in alternation, `steps` times in all, at least 2 cm, and
    # stand still (flat, within 1 mm) in between.
    pts = kinematics.contact_points(skel, m.coordinates)
    lifts = []
    for f in (0, 1):
      low = pts[:, feet == f, 1].min(axis=1)
      up = kinematics.segments(low > 0.005)
      assert all(low[a:b].max() > 0.02 for a, b in up)
      lifts += [(a, f) for a, b in up]
      for a, b in kinematics.segments(low < 1e-3):
        if b - a > 2:
          assert np.ptp(pts[a:b, feet == f][..., [0, 2]], axis=0).max() < 1e-3
    lifts.sort()
    assert len(lifts) == p['steps']
    assert all(f0 != f1 for (_, f0), (_, f1) in zip(lifts, lifts[1:]))  # alternating
    # The first foot to step is on the side of the turn (turning left: left foot).
    assert lifts[0][1] == (1 if p['turn_deg'] > 0 else 0)


@pytest.mark.parametrize('family', ['turning', 'kneeling'])
def test_deterministic_and_windows_short_clips(skel, family):
  a = sample_motion(family, 3, num_frames=32, skeleton=skel)
  b = sample_motion(family, 3, num_frames=32, skeleton=skel)
  c = sample_motion(family, 4, num_frames=32, skeleton=skel)
  assert np.array_equal(a.coordinates, b.coordinates)
  assert dict(a.params, build_seconds=0) == dict(b.params, build_seconds=0)
  assert not np.allclose(a.coordinates, c.coordinates)
  # A 32-frame clip is a window of the sequence placed by `window`.
  params, nominal = _sampled_sequence(family, 3)
  assert a.params['time_offset_s'] == pytest.approx(params['window'] * (nominal - 32 / 60.0))
  if family == 'turning':
    assert abs(a.params['clip_turn_deg']) <= abs(a.params['turn_deg']) + 1e-9


@pytest.fixture(scope='module')
def kneeling_clips(skel):
  return [sample_motion('kneeling', seed, num_frames=_full_frames('kneeling', seed),
                        skeleton=skel) for seed in (0, 1)]


def test_kneeling_knee_on_the_floor_during_the_hold(kneeling_clips, skel):
  feet = kinematics.foot_contacts(skel).foot
  sides = set()
  for m in kneeling_clips:
    p = m.params
    rear = p['kneel_side']
    sides.add(rear)
    s, f = kinematics.SIDES[rear], kinematics.SIDES[1 - rear]
    start, end = kneeling.hold_times(p)
    t = m.times
    held = (t >= start) & (t <= end)
    assert held.sum() >= 0.9 * p['hold_s'] * m.fps
    pos, rot = kinematics.body_poses(skel, m.coordinates)
    patella = pos[:, skel.body_index(f'patella_{s}'), 1]
    other = pos[:, skel.body_index(f'patella_{f}'), 1]
    # The kneeling patella at its designed height (1.5-3 cm), static, during the hold;
    # neither knee ever below the floor; the front knee up (half-kneeling).
    assert np.abs(patella[held] - p['knee_height_m']).max() < 0.005
    assert 0.0 < patella[held].min() and patella[held].max() < 0.04
    knee_xz = pos[held, skel.body_index(f'patella_{s}')][:, [0, 2]]
    assert np.ptp(knee_xz, axis=0).max() < 0.002
    assert patella.min() > 0.0 and other.min() > 0.3
    # Standing before and after: the kneeling knee well up.
    assert patella[0] > 0.3 and patella[-1] > 0.3
    # Feet: no sole point below the floor; the front foot flat and static in the hold;
    # the kneeling foot plantarflexed, its toes' dorsum (2 cm over the toes' sole
    # points) on the floor, not below it.
    pts = kinematics.contact_points(skel, m.coordinates)
    assert pts[..., 1].min() > -1e-6
    front = pts[held][:, feet == 1 - rear]
    assert np.abs(front[..., 1]).max() < 0.003
    assert np.ptp(front[..., [0, 2]], axis=0).max() < 1e-3
    ankle = np.degrees(m.coordinates[held, skel.coordinate_index(f'ankle_angle_{s}')])
    assert ankle.max() < -35.0
    toes = rot[:, skel.body_index(f'toes_{s}')]
    dorsum = pts[:, feet == rear][:, 4] + toes @ np.array([0.0, kneeling.TOE_THICKNESS, 0.0])
    assert np.abs(dorsum[held, 1] - kneeling.TOE_CLEARANCE).max() < 0.003
    assert dorsum[:, 1].min() > -0.003
  assert sides == {0, 1}  # seeds 0 and 1 kneel on different legs

