"""AMASS-format stand-in sequences, for tests only (never training data).

AMASS is licensed (https://amass.is.tue.mpg.de) and never downloaded or shipped here.
`write_standin_sequence` writes a stage-II SMPL-X file (`*_stageii.npz`, the keys and
layout `amass.read_amass_npz` reads) whose motion is plausible: a procedural motion of
the project model retargeted onto a SMPL-X body (e.g. the `smplx_standin` tube body)
and converted to AMASS's z-up mocap frame. So AMASS clips can be labelled end to end
on stand-in files, and the IK coordinates compared with the coordinates that made them.

A whole stand-in manual_dir (smplx/ + amass/), e.g. to try `make_subjects --amass_dir`:

    python -m odah_tfds.motions.amass_standin --out=/tmp/standin --people=3
"""

from __future__ import annotations

import argparse
import pathlib

import numpy as np
from scipy.spatial.transform import Rotation

from odah_tfds import motions
from odah_tfds.body import smplx_body
from odah_tfds.body import smplx_standin

# The rotation AMASS's root orientation applies to stand a y-up SMPL-X body in the z-up
# mocap frame (+90 deg about x); see `smplx_body.SMPLX_Z_UP_TO_WORLD`.
_Y_UP_IN_Z_UP = Rotation.from_rotvec([np.pi / 2, 0.0, 0.0]).as_matrix()
NUM_STORED_BETAS = 16  # AMASS SMPL-X stage-II files store 16 betas


def write_standin_sequence(path, body, shape, motion='walking', seed: int = 0,
                           fps: float = 120.0, num_frames: int = 120,
                           heading_deg: float = 0.0, offset=(0.0, 0.0)):
  """Writes an AMASS SMPL-X stage-II-format file; returns the `Motion` it was made from.

  Args:
    path: the `*_stageii.npz` to write (folders are created).
    body: a `smplx_body.SmplxBody` (the stand-in's).
    shape: the `SmplxSubject` the motion is retargeted onto; its gender and betas are
      stored (padded to 16 betas).
    motion: a procedural family, sampled with `seed`, `fps`, `num_frames` and
      `heading_deg` (`motions.sample_motion`; positive headings turn +x towards -z);
      or a `Motion` of project coordinates (its fps is the file's; heading_deg must
      be 0: turn it yourself).
    seed, fps, num_frames, heading_deg: see `motion`.
    offset: (x, z) world metres added to the pelvis position.

  Returns:
    The `Motion` (project coordinates, with heading and offset) the file was made from.
  """
  if isinstance(motion, str):
    motion = motions.sample_motion(motion, np.random.default_rng(seed), fps=fps,
                                   num_frames=num_frames, heading_deg=heading_deg)
  elif heading_deg:
    raise ValueError('heading_deg turns sampled motions only; turn a given Motion yourself')
  fps = motion.fps
  coords = np.array(motion.coordinates)
  names = list(motion.coordinate_names)
  coords[:, names.index('pelvis_tx')] += offset[0]
  coords[:, names.index('pelvis_tz')] += offset[1]
  motion = motions.Motion(family=motion.family, fps=fps, coordinates=coords,
                          coordinate_names=motion.coordinate_names, params=motion.params)
  pose, roots = body.retarget(shape, coords)  # y-up pose, world pelvis joint positions
  t = pose.num_frames
  orient = Rotation.from_matrix(
      _Y_UP_IN_Z_UP @ Rotation.from_rotvec(pose.global_orient).as_matrix()).as_rotvec()
  to_world = smplx_body.UP_AXIS_TO_WORLD['z']
  zero = smplx_body.SmplxPose.rest(t)
  pelvis = body.native_root_translation(shape, smplx_body.SmplxPose(
      **{k: getattr(zero, k) for k in ('global_orient', 'body_pose', 'left_hand_pose',
                                       'right_hand_pose', 'jaw_pose', 'leye_pose',
                                       'reye_pose', 'transl')}, up_axis='z'))
  trans = (roots - pelvis) @ to_world  # world pelvis = to_world @ (J0 + trans)
  poses = np.concatenate([orient, pose.body_pose, pose.jaw_pose, pose.leye_pose,
                          pose.reye_pose, pose.left_hand_pose, pose.right_hand_pose], axis=1)
  betas = np.zeros(max(NUM_STORED_BETAS, len(shape.betas)))
  betas[:len(shape.betas)] = shape.betas
  path = pathlib.Path(path)
  path.parent.mkdir(parents=True, exist_ok=True)
  np.savez(path, poses=poses, trans=trans, betas=betas, gender=np.array(shape.gender),
           mocap_frame_rate=np.array(float(fps)), surface_model_type=np.array('smplx'))
  return motion


def write_standin_tree(out, people: int = 2, families=('walking', 'squat'), seconds: float = 2.0,
                       fps: float = 120.0, seed: int = 0) -> pathlib.Path:
  """A stand-in manual_dir: `<out>/smplx/` (male and female `smplx_standin` models) and
  `<out>/amass/STANDIN/p<k>/<family>_stageii.npz` (person k: alternating gender, betas[:2]
  ~ N(0, 0.5), random heading and start position). Returns `out`."""
  out = pathlib.Path(out)
  for gender in ('male', 'female'):
    smplx_standin.write_standin_model(out / 'smplx', gender)
  body = smplx_body.SmplxBody(out / 'smplx')
  rng = np.random.default_rng(seed)
  for k in range(people):
    shape = smplx_body.SmplxSubject(('female', 'male')[k % 2], tuple(0.5 * rng.standard_normal(2)))
    for family in families:
      write_standin_sequence(out / 'amass' / 'STANDIN' / f'p{k:02d}' / f'{family}_stageii.npz',
                             body, shape, family, seed=int(rng.integers(1 << 30)), fps=fps,
                             num_frames=round(seconds * fps),
                             heading_deg=float(rng.uniform(-180, 180)),
                             offset=tuple(rng.uniform(-2, 2, 2)))
  return out


def main(argv=None) -> None:
  """python -m odah_tfds.motions.amass_standin --out=DIR [--people=N] [--families=a,b]"""
  parser = argparse.ArgumentParser(description='Writes a stand-in SMPL-X + AMASS manual_dir '
                                   '(procedural, for tests and measurements only).')
  parser.add_argument('--out', required=True)
  parser.add_argument('--people', type=int, default=2)
  parser.add_argument('--families', default='walking,squat')
  parser.add_argument('--seconds', type=float, default=2.0)
  parser.add_argument('--seed', type=int, default=0)
  args = parser.parse_args(argv)
  out = write_standin_tree(args.out, args.people, tuple(args.families.split(',')),
                           args.seconds, seed=args.seed)
  print(f'wrote {out}/smplx and {out}/amass')


if __name__ == '__main__':
  main()
