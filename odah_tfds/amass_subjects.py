"""Which AMASS sequences each ODAH subject gets (config `smplx_amass`, make_subjects --amass_dir).

AMASS (https://amass.is.tue.mpg.de) is licensed: the user extracts its SMPL-X archives
under `<manual_dir>/amass/` (`<dataset>/<subject>/<sequence>_stageii.npz`); nothing here
downloads it. Rules (project choices):

* A *group* is the folder of a sequence relative to the AMASS root (`<dataset>/<subject>`):
  one captured person.
* Splits hold whole groups: the sorted groups are shuffled with
  `numpy.random.default_rng((seed, GROUP_SALT))` and cut into train / validation / test
  parts proportional to the subject counts (largest remainders, at least one group per
  non-empty split). So no sequence, and no captured person, is in two splits.
* Subject k of a split (k-th of its consecutive subject indices) takes the split's group
  k mod n: with at least as many groups as subjects every subject is another person;
  with fewer, groups serve several subjects round robin (same body, other windows).
* A subject's body is its group's own: gender and betas of the group's first sequence
  (sorted; MoSh++ fits one shape per person). The AMASS poses and root translations
  were fitted to that body, so on it the feet meet the floor and the hands the body as
  captured; sampled betas would change leg length and girth under the same
  translations (foot skating, floating, interpenetration). The shape diversity is
  AMASS's own (~500 people in the SMPL-X release).
* A subject's clips cycle through its group's sequences from a random start (its rng);
  the window in a sequence is uniform (`labels.make_amass_clip`).

The assignment depends on the file listing and the seed only (no file is read), so each
generation worker recomputes it cheaply and identically. Adding or removing files
changes it.
"""

from __future__ import annotations

import dataclasses
import pathlib

import numpy as np

from odah_tfds.body import base as body_base
from odah_tfds.body import smplx_body
from odah_tfds.motions import amass

AMASS_REGISTRATION_URL = 'https://amass.is.tue.mpg.de'
SPLITS = ('train', 'validation', 'test')  # the order of GenerationConfig.subjects
# Second seed word of the group shuffle (keeps it apart from the subjects' own draws).
GROUP_SALT = 0xA3A55


class AmassFilesError(body_base.ManualFilesError):
  """AMASS files are missing, or too few for the requested splits."""


def _instructions(root: pathlib.Path) -> str:
  return (f'AMASS is licensed and must be downloaded by hand: register at '
          f'{AMASS_REGISTRATION_URL}, download the "SMPL-X N" (or "SMPL-X G") archives of the '
          f'datasets you want and extract them into {root} (for the TFDS builder: '
          '<manual_dir>/amass/), giving <dataset>/<subject>/<sequence>_stageii.npz.')


def list_sequences(root) -> list[pathlib.Path]:
  """The `*_stageii.npz` files under `root`, sorted; AmassFilesError if there are none."""
  root = pathlib.Path(root)
  if not root.is_dir():
    raise AmassFilesError(f'AMASS folder not found: {root}. {_instructions(root)}')
  files = amass.find_amass_files(root)
  if not files:
    raise AmassFilesError(f'no AMASS SMPL-X sequence (*_stageii.npz) under {root}. '
                          f'{_instructions(root)}')
  return files


def _partition(num_groups: int, counts: tuple[int, ...]) -> list[int]:
  """Groups per split: proportional to `counts`, >= 1 for a non-empty split."""
  active = [i for i, c in enumerate(counts) if c > 0]
  total = sum(counts)
  sizes = [0] * len(counts)
  for i in active:
    sizes[i] = max(1, num_groups * counts[i] // total)
  while sum(sizes) > num_groups:  # the >= 1 floors overshot: take from the largest
    i = max(active, key=lambda i: (sizes[i], -i))
    sizes[i] -= 1
  while sum(sizes) < num_groups:  # largest remainder first
    i = max(active, key=lambda i: (num_groups * counts[i] / total - sizes[i], -i))
    sizes[i] += 1
  return sizes


@dataclasses.dataclass(frozen=True)
class AmassAssignment:
  """The groups of each split and the sequences of each subject (see the module docstring).

  Attributes:
    root: the AMASS folder.
    subjects: subjects per split (SPLITS order); subject indices are consecutive.
    groups: group (relative folder, posix) -> its sequences (relative paths), sorted.
    splits: split -> its groups, in assignment order.
  """

  root: pathlib.Path
  subjects: tuple[int, int, int]
  groups: dict[str, tuple[str, ...]]
  splits: dict[str, tuple[str, ...]]

  def split_of(self, subject_index: int) -> tuple[str, int]:
    """(split, position within it) of a subject index."""
    start = 0
    for split, count in zip(SPLITS, self.subjects):
      if start <= subject_index < start + count:
        return split, subject_index - start
      start += count
    raise IndexError(f'subject {subject_index} is outside the {sum(self.subjects)} subjects')

  def group_of(self, subject_index: int) -> str:
    split, k = self.split_of(subject_index)
    groups = self.splits[split]
    return groups[k % len(groups)]

  def sequences(self, subject_index: int) -> list[pathlib.Path]:
    """The subject's candidate sequences (absolute paths, sorted)."""
    return [self.root / rel for rel in self.groups[self.group_of(subject_index)]]

  def used_groups(self) -> list[str]:
    """Every group some subject takes, in subject order (without repeats)."""
    seen = {}
    for i in range(sum(self.subjects)):
      seen.setdefault(self.group_of(i), None)
    return list(seen)


def assign(root, subjects: tuple[int, int, int], seed: int,
           files: list[pathlib.Path] | None = None) -> AmassAssignment:
  """Assigns the AMASS groups under `root` to splits and subjects (module docstring).

  Args:
    root: the AMASS folder.
    subjects: subjects per split (train, validation, test).
    seed: the build's seed.
    files: the sequences (default: `list_sequences(root)`).

  Raises:
    AmassFilesError: no sequence, or fewer groups than non-empty splits.
  """
  root = pathlib.Path(root)
  subjects = tuple(int(c) for c in subjects)
  if len(subjects) != len(SPLITS) or min(subjects) < 0 or sum(subjects) < 1:
    raise ValueError(f'subjects must give {len(SPLITS)} counts >= 0, got {subjects}')
  files = list_sequences(root) if files is None else files
  groups: dict[str, list[str]] = {}
  for path in files:
    rel = pathlib.Path(path).relative_to(root)
    groups.setdefault(rel.parent.as_posix(), []).append(rel.as_posix())
  names = sorted(groups)
  needed = sum(1 for c in subjects if c > 0)
  if len(names) < needed:
    raise AmassFilesError(
        f'{root} holds sequences of {len(names)} AMASS subject folder(s) ({names}), but the '
        f'{needed} non-empty splits need one each, so that no sequence is in two splits. '
        f'{_instructions(root)}')
  order = np.random.default_rng((int(seed), GROUP_SALT)).permutation(len(names))
  shuffled = [names[i] for i in order]
  sizes = _partition(len(names), subjects)
  splits, start = {}, 0
  for split, size in zip(SPLITS, sizes):
    splits[split] = tuple(shuffled[start:start + size])
    start += size
  return AmassAssignment(root=root, subjects=subjects,
                         groups={g: tuple(sorted(groups[g])) for g in names}, splits=splits)


def subject_shape(sequence):
  """The `SmplxSubject` (gender, betas) stored in an AMASS SMPL-X file."""
  data = amass.read_amass_npz(sequence)
  return smplx_body.SmplxSubject(data['gender'], tuple(np.asarray(data['betas']).tolist()))


def check_files(assignment: AmassAssignment, smplx_dir) -> None:
  """Reads the body of every group a subject uses and checks that its SMPL-X model file
  is there (before any example is generated).

  Raises:
    motions.ManualFilesError: a first sequence is not an AMASS SMPL-X file.
    smplx_body.SmplxModelFilesError: a needed SMPLX_<GENDER>.npz is missing or invalid.
  """
  genders = sorted({_gender(assignment.root / assignment.groups[g][0])
                    for g in assignment.used_groups()})
  smplx_body.check_model_dir(smplx_dir, genders)


def _gender(sequence: pathlib.Path) -> str:
  """The `gender` of an AMASS file, reading that array only (files can be large)."""
  try:
    with np.load(sequence, allow_pickle=False) as data:
      value = data['gender'] if 'gender' in data.files else None
  except (OSError, EOFError, ValueError) as e:
    raise amass.ManualFilesError(f'{sequence}: not a readable AMASS .npz file ({e}). '
                                 f'Expected {amass.EXPECTED_LAYOUT}.') from e
  gender = None if value is None else np.asarray(value).reshape(-1)[:1].tolist()
  gender = gender[0] if gender else None
  gender = gender.decode() if isinstance(gender, bytes) else gender
  if not isinstance(gender, str) or gender.strip().lower() not in amass.GENDERS:
    raise amass.ManualFilesError(f'{sequence}: gender is {gender!r}, expected one of '
                                 f'{amass.GENDERS}. Expected {amass.EXPECTED_LAYOUT}.')
  return gender.strip().lower()
