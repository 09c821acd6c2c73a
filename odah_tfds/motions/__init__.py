"""ODAH motion sources: a procedural motion library and an AMASS (SMPL-X) reader.

* `Motion` (base.py): the project model's 39 coordinates per frame + fps, family and
  sampled parameters; JSON / npz round trips.
* `sample_motion`, `sample_any`, `FAMILIES` (procedural.py): 17 movement families
  (walking, running, squat, sit-to-stand, lunge, jumping jacks, arm flexion and
  abduction, reaching, trunk flexion and rotation, stepping, jumping, single-leg
  balance, turning in place and half-kneeling), planted on the floor for a (scaled)
  subject with the skeleton layer's forward kinematics; `ODAH_1_FAMILIES`: the first
  13, what "all families" means. Built in gait.py, lower_body.py, upper_body.py,
  dynamic.py, balance.py, turning.py and kneeling.py, with the helpers they share in
  family_tools.py.
* `measure` (plausibility.py): ranges, smoothness, ground contact, foot skating.
* `load_amass_clip`, `find_amass_files`, `AmassClip` (amass.py): AMASS SMPL-X
  `*_stageii.npz` files, resampled to the dataset frame rate.

Nothing here imports TensorFlow.
"""

from odah_tfds.motions.amass import (AmassClip, ManualFilesError, find_amass_files,
                                     load_amass_clip, read_amass_npz)
from odah_tfds.motions.base import Motion
from odah_tfds.motions.plausibility import LIMITS, measure, violations
from odah_tfds.motions.procedural import (FAMILIES, ODAH_1_FAMILIES, Family, sample_any,
                                          sample_motion)

__all__ = [
    'AmassClip', 'FAMILIES', 'Family', 'LIMITS', 'ManualFilesError', 'Motion', 'ODAH_1_FAMILIES',
    'find_amass_files', 'load_amass_clip', 'measure', 'read_amass_npz', 'sample_any',
    'sample_motion', 'violations',
]
