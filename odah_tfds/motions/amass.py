"""Reader for AMASS motions in SMPL-X form (`*_stageii.npz`), resampled to a set rate.

AMASS (Mahmood et al., ICCV 2019; https://amass.is.tue.mpg.de) is licensed: it is never
downloaded or shipped here. The user puts the SMPL-X ("SMPL-X N" / "SMPL-X G")
downloads under the TFDS manual directory:

    <manual_dir>/amass/<dataset>/<subject>/<sequence>_stageii.npz

File format (NumPy .npz, as written by MoSh++ stage II for SMPL-X):

* `poses` (T, 165) float: axis-angle rotations of the 55 SMPL-X joints, in the
  SMPL-X model's joint order: global/root orientation (3) | body (21 x 3 = 63) |
  jaw (3) | left eye (3) | right eye (3) | left hand (15 x 3 = 45) | right hand (45).
  This is the order in which `smplx.SMPLX.forward` concatenates `global_orient`,
  `body_pose`, `jaw_pose`, `leye_pose`, `reye_pose`, `left_hand_pose`,
  `right_hand_pose` (smplx 0.1.28) and of `smplx.joint_names.JOINT_NAMES`.
* optionally the same split into `root_orient` (T, 3), `pose_body` (T, 63),
  `pose_jaw` (T, 3), `pose_eye` (T, 6), `pose_hand` (T, 90); when all are present
  they are used (and must agree with `poses` if that is there too);
* `trans` (T, 3) root translation (metres, the SMPL-X world frame of the file);
* `betas` (B,) shape coefficients; `gender` ('male' | 'female' | 'neutral');
* `mocap_frame_rate` (older files: `mocap_framerate`) in Hz;
* `surface_model_type` 'smplx' (SMPL+H files have 'smplh' and `poses` (T, 156)).

Resampling to the dataset rate: rotations per joint by quaternion slerp along the
shorter arc, translation linearly; output frames are at k / fps for every k with
k / fps <= (T - 1) / source_fps (so 120 -> 60 Hz halves the frame count).
"""

from __future__ import annotations

import dataclasses
import os
import pathlib

import numpy as np

EXPECTED_LAYOUT = (
    '<manual_dir>/amass/<dataset>/<subject>/<sequence>_stageii.npz: AMASS SMPL-X '
    '(stage II) files with poses (T, 165) axis-angle [root 3 | body 63 | jaw 3 | eyes 6 | '
    'left hand 45 | right hand 45], trans (T, 3), betas (B,), gender, mocap_frame_rate '
    "and surface_model_type 'smplx'")

NUM_POSE = 165
SLICES = {  # column ranges of `poses`
    'global_orient': (0, 3),
    'body_pose': (3, 66),
    'jaw_pose': (66, 69),
    'eye_pose': (69, 75),
    'left_hand_pose': (75, 120),
    'right_hand_pose': (120, 165),
}
_SPLIT_KEYS = {  # AMASS split keys -> (our name(s), width)
    'root_orient': 3, 'pose_body': 63, 'pose_jaw': 3, 'pose_eye': 6, 'pose_hand': 90,
}
GENDERS = ('male', 'female', 'neutral')


class ManualFilesError(ValueError):
  """A user-provided (manual) file is missing or not in the expected format."""


def _error(path, problem: str) -> ManualFilesError:
  return ManualFilesError(f'{path}: {problem}. Expected {EXPECTED_LAYOUT}.')


@dataclasses.dataclass(frozen=True, eq=False)
class AmassClip:
  """One AMASS SMPL-X sequence at `fps` (arrays float64, axis-angle in radians).

  Attributes:
    global_orient: (T, 3) root orientation.
    body_pose: (T, 63) 21 body joints.
    left_hand_pose, right_hand_pose: (T, 45) 15 joints each.
    jaw_pose: (T, 3).
    eye_pose: (T, 6) left eye then right eye.
    transl: (T, 3) root translation, metres.
    betas: (B,) shape coefficients.
    gender: 'male' | 'female' | 'neutral'.
    fps: frame rate of the arrays (Hz).
    source_fps: frame rate of the file.
    source: path of the file.
  """

  global_orient: np.ndarray
  body_pose: np.ndarray
  left_hand_pose: np.ndarray
  right_hand_pose: np.ndarray
  jaw_pose: np.ndarray
  eye_pose: np.ndarray
  transl: np.ndarray
  betas: np.ndarray
  gender: str
  fps: float
  source_fps: float
  source: str

  @property
  def num_frames(self) -> int:
    return int(self.transl.shape[0])

  @property
  def duration(self) -> float:
    """num_frames / fps (s)."""
    return self.num_frames / self.fps

  @property
  def poses(self) -> np.ndarray:
    """(T, 165) in the file's column order."""
    return np.concatenate([self.global_orient, self.body_pose, self.jaw_pose, self.eye_pose,
                           self.left_hand_pose, self.right_hand_pose], axis=1)


def find_amass_files(root) -> list[pathlib.Path]:
  """All `*_stageii.npz` below `root` (recursively), sorted by their relative path.

  Raises ManualFilesError if `root` is not a directory. Returns [] when it holds none.
  """
  root = pathlib.Path(root)
  if not root.is_dir():
    raise ManualFilesError(f'{root}: AMASS directory not found. Expected {EXPECTED_LAYOUT}.')
  files = [p for p in root.rglob('*_stageii.npz') if p.is_file()]
  return sorted(files, key=lambda p: p.relative_to(root).as_posix())


def _scalar_string(value, path, key) -> str:
  arr = np.asarray(value)
  if arr.size != 1:
    raise _error(path, f'{key} must be a single string, got shape {arr.shape}')
  item = arr.reshape(()).item()
  if isinstance(item, bytes):
    item = item.decode('utf-8', 'replace')
  if not isinstance(item, str):
    raise _error(path, f'{key} must be a string, got {type(item).__name__}')
  return item.strip().lower()


def _array(data, key, path, width=None) -> np.ndarray:
  arr = np.asarray(data[key])
  if arr.dtype.kind not in 'fiu':
    raise _error(path, f'{key} must be numeric, got dtype {arr.dtype}')
  arr = arr.astype(np.float64)
  if width is not None and (arr.ndim != 2 or arr.shape[1] != width):
    raise _error(path, f'{key} must have shape (T, {width}), got {arr.shape}')
  if not np.all(np.isfinite(arr)):
    raise _error(path, f'{key} has non-finite values')
  return arr


def read_amass_npz(path) -> dict:
  """Reads and validates a stage-II SMPL-X file at its own frame rate.

  Returns a dict with the AmassClip fields (arrays at `source_fps`, fps = source_fps).
  Raises ManualFilesError with what is wrong and what is expected.
  """
  path = pathlib.Path(path)
  if not path.is_file():
    raise ManualFilesError(f'{path}: file not found. Expected {EXPECTED_LAYOUT}.')
  try:
    with np.load(path, allow_pickle=False) as npz:
      data = {k: npz[k] for k in npz.files}
  except ValueError as e:  # object arrays need pickle: not a stage-II SMPL-X file
    raise _error(path, f'could not read it without pickle ({e})') from e
  except (OSError, EOFError) as e:
    raise _error(path, f'not a readable .npz file ({e})') from e

  model = None
  if 'surface_model_type' in data:
    model = _scalar_string(data['surface_model_type'], path, 'surface_model_type')
    if model != 'smplx':
      raise _error(path, f"surface_model_type is {model!r}: this is not an SMPL-X file "
                         '(download the SMPL-X version of the AMASS dataset)')
  if 'poses' in data:
    width = np.shape(data['poses'])[-1] if np.ndim(data['poses']) == 2 else None
    if width == 156:
      raise _error(path, 'poses has 156 columns: this is an SMPL+H (AMASS "SMPL+H G") file, '
                         'not SMPL-X')
  split = [k for k in _SPLIT_KEYS if k in data]
  if len(split) == len(_SPLIT_KEYS):
    parts = {k: _array(data, k, path, w) for k, w in _SPLIT_KEYS.items()}
    poses = np.concatenate([parts['root_orient'], parts['pose_body'], parts['pose_jaw'],
                            parts['pose_eye'], parts['pose_hand']], axis=1)
    if 'poses' in data:
      full = _array(data, 'poses', path, NUM_POSE)
      if full.shape != poses.shape or not np.allclose(full, poses, atol=1e-5):
        raise _error(path, 'poses disagrees with root_orient | pose_body | pose_jaw | '
                           'pose_eye | pose_hand')
  elif 'poses' in data:
    poses = _array(data, 'poses', path, NUM_POSE)
  else:
    missing = ['poses'] + [k for k in _SPLIT_KEYS if k not in data]
    raise _error(path, f'missing pose keys {missing} (found {sorted(data)})')
  for key in ('trans', 'betas', 'gender'):
    if key not in data:
      raise _error(path, f'missing key {key!r} (found {sorted(data)})')
  rate_key = ('mocap_frame_rate' if 'mocap_frame_rate' in data else
              'mocap_framerate' if 'mocap_framerate' in data else None)
  if rate_key is None:
    raise _error(path, f"missing 'mocap_frame_rate' (or 'mocap_framerate'; found {sorted(data)})")
  trans = _array(data, 'trans', path, 3)
  if trans.shape[0] != poses.shape[0]:
    raise _error(path, f'trans has {trans.shape[0]} frames but the poses have {poses.shape[0]}')
  if poses.shape[0] < 1:
    raise _error(path, 'the sequence has no frames')
  betas = _array(data, 'betas', path)
  if betas.ndim == 2 and betas.shape[0] == 1:
    betas = betas[0]
  if betas.ndim != 1 or betas.size == 0:
    raise _error(path, f'betas must have shape (B,), got {betas.shape}')
  gender = _scalar_string(data['gender'], path, 'gender')
  if gender not in GENDERS:
    raise _error(path, f'gender is {gender!r}, expected one of {GENDERS}')
  rate = np.asarray(data[rate_key], dtype=np.float64)
  if rate.size != 1 or not np.isfinite(rate).all() or float(rate.reshape(())) <= 0:
    raise _error(path, f'{rate_key} must be one positive number, got {data[rate_key]!r}')
  rate = float(rate.reshape(()))
  out = {name: poses[:, a:b] for name, (a, b) in SLICES.items()}
  out.update(transl=trans, betas=betas, gender=gender, fps=rate, source_fps=rate,
             source=os.fspath(path))
  return out


# ---- resampling ------------------------------------------------------------------

def axis_angle_to_quaternion(aa) -> np.ndarray:
  """(..., 3) axis-angle -> (..., 4) unit quaternions (w, x, y, z)."""
  aa = np.asarray(aa, dtype=np.float64)
  angle = np.linalg.norm(aa, axis=-1, keepdims=True)
  half = 0.5 * angle
  # sin(half) / angle -> 1/2 as angle -> 0.
  k = np.where(angle > 1e-12, np.sin(half) / np.where(angle > 1e-12, angle, 1.0), 0.5)
  return np.concatenate([np.cos(half), aa * k], axis=-1)


def quaternion_to_axis_angle(q) -> np.ndarray:
  """(..., 4) quaternions (w, x, y, z) -> (..., 3) axis-angle with angle in [0, pi]."""
  q = np.asarray(q, dtype=np.float64)
  q = q / np.linalg.norm(q, axis=-1, keepdims=True)
  q = np.where(q[..., :1] < 0, -q, q)  # w >= 0: the angle is at most pi
  v = q[..., 1:]
  s = np.linalg.norm(v, axis=-1, keepdims=True)
  angle = 2.0 * np.arctan2(s, q[..., :1])
  k = np.where(s > 1e-12, angle / np.where(s > 1e-12, s, 1.0), 2.0)
  return v * k


def slerp(q0, q1, w) -> np.ndarray:
  """Spherical linear interpolation of unit quaternions (..., 4) along the shorter arc;
  w (...) in [0, 1]."""
  q0 = np.asarray(q0, dtype=np.float64)
  q1 = np.asarray(q1, dtype=np.float64)
  w = np.asarray(w, dtype=np.float64)[..., None]
  dot = np.sum(q0 * q1, axis=-1, keepdims=True)
  q1 = np.where(dot < 0, -q1, q1)  # q and -q are the same rotation: take the near one
  dot = np.abs(dot)
  theta = np.arccos(np.clip(dot, -1.0, 1.0))
  sin = np.sin(theta)
  small = sin < 1e-9
  a = np.where(small, 1.0 - w, np.sin((1.0 - w) * theta) / np.where(small, 1.0, sin))
  b = np.where(small, w, np.sin(w * theta) / np.where(small, 1.0, sin))
  out = a * q0 + b * q1
  return out / np.linalg.norm(out, axis=-1, keepdims=True)


def resample_times(num_frames: int, source_fps: float, fps: float) -> np.ndarray:
  """Output frame times k / fps (s) that lie within the source clip."""
  last = (num_frames - 1) / source_fps
  count = int(np.floor(last * fps + 1e-9)) + 1
  return np.arange(count) / fps


def _interp_index(num_frames, source_fps, times):
  pos = times * source_fps
  i0 = np.clip(np.floor(pos + 1e-9).astype(int), 0, num_frames - 1)
  i1 = np.minimum(i0 + 1, num_frames - 1)
  return i0, i1, np.clip(pos - i0, 0.0, 1.0)


def resample_axis_angle(aa, source_fps: float, fps: float) -> np.ndarray:
  """(T, 3 J) axis-angle per joint at source_fps -> (T', 3 J) at fps (slerp)."""
  aa = np.asarray(aa, dtype=np.float64)
  num, width = aa.shape
  times = resample_times(num, source_fps, fps)
  i0, i1, w = _interp_index(num, source_fps, times)
  q = axis_angle_to_quaternion(aa.reshape(num, width // 3, 3))
  out = slerp(q[i0], q[i1], np.broadcast_to(w[:, None], (len(times), width // 3)))
  return quaternion_to_axis_angle(out).reshape(len(times), width)


def resample_linear(x, source_fps: float, fps: float) -> np.ndarray:
  """(T, D) at source_fps -> (T', D) at fps (linear interpolation)."""
  x = np.asarray(x, dtype=np.float64)
  times = resample_times(x.shape[0], source_fps, fps)
  i0, i1, w = _interp_index(x.shape[0], source_fps, times)
  return x[i0] * (1 - w[:, None]) + x[i1] * w[:, None]


def load_amass_clip(path, fps: float = 60.0) -> AmassClip:
  """Reads a stage-II SMPL-X file and resamples it to `fps` (see module docstring)."""
  if not np.isfinite(fps) or fps <= 0:
    raise ValueError(f'fps must be positive, got {fps!r}')
  raw = read_amass_npz(path)
  src = raw['source_fps']
  fields = {}
  for name in SLICES:
    fields[name] = resample_axis_angle(raw[name], src, fps)
  return AmassClip(transl=resample_linear(raw['transl'], src, fps), betas=raw['betas'],
                   gender=raw['gender'], fps=float(fps), source_fps=src, source=raw['source'],
                   **fields)
