"""The SMPL-X body backend (licensed model files supplied by the user).

SMPL-X runs through the `smplx` package (0.1.28, torch, CPU, float32) from the model
files `SMPLX_NEUTRAL.npz`, `SMPLX_MALE.npz`, `SMPLX_FEMALE.npz` in a folder the user
gives (for the TFDS builder: `<manual_dir>/smplx/`). They are licensed: register at
https://smpl-x.is.tue.mpg.de and download "SMPL-X v1.1 (NPZ+PKL)"; nothing here
downloads, ships or commits them. Missing or unreadable files raise
`SmplxModelFilesError` (a `base.ManualFilesError`) saying which file goes where.

Native frames and the world frame (x anterior, y up, z right):
* SMPL-X model frame ('y' up, `SmplxPose.up_axis == 'y'`): y up, the body faces +z,
  x = the subject's left. p_world = SMPLX_Y_UP_TO_WORLD @ p with
  SMPLX_Y_UP_TO_WORLD = [[0, 0, 1], [0, 1, 0], [-1, 0, 0]].
* AMASS sequences ('z' up): AMASS stores SMPL-X poses in the z-up mocap frame (the root
  orientation rotates the y-up body into it). p_world = SMPLX_Z_UP_TO_WORLD @ p with
  SMPLX_Z_UP_TO_WORLD = [[0, -1, 0], [0, 0, 1], [-1, 0, 0]] (z-up -> y-up by -90 deg about
  x, then the y-up mapping). The heading is the capture's.

Native pose = `SmplxPose` (axis-angle joint rotations as in SMPL-X / AMASS, plus the
translation). AMASS `*_stageii.npz` arrays map to it with `SmplxPose.from_amass`
(`poses (T, 165)`: root_orient 0:3, pose_body 3:66, pose_jaw 66:69, pose_eye 69:75,
pose_hand 75:165; hands as full axis-angle, i.e. `use_pca=False, flat_hand_mean=True`).

Markers: the documented landmark search (`markers.find_landmark_vertices`) runs once per
backend instance on the zero-shape template of the reference model file (NEUTRAL if
present, else MALE, else FEMALE); the same vertex ids then serve every subject and
gender. Published SMPL-X marker layouts (MoSh++/SOMA) are part of licensed
distributions and are not copied here. As on anny (`JOINT_CENTRES`, `CARRY`):
* all joint centres are the model's own joints, i.e. the points its mesh rotates about
  (HJC, KJC, AJC, SJC, EJC, WJC = hip, knee, ankle, shoulder, elbow, wrist;
  `joint_centres='rig'`), not landmark midpoints;
* the bony landmarks (`markers.BONY_SEGMENTS`) are carried rigidly by the SMPL-X joint
  that moves their project body (`SEGMENT_JOINTS`; `carry='bony'`): the landmark
  vertex of the subject's shaped zero-pose mesh moved by that joint's LBS transform
  (`_carried_points`). Linear-blend skinning moves skin near a joint partly with the
  next segment; a bone does not. In the zero pose carried points and vertices coincide.
"""

from __future__ import annotations

import dataclasses
import pathlib
import zipfile
from collections.abc import Mapping, Sequence

import numpy as np
from scipy.spatial.transform import Rotation

from odah_tfds.body import base
from odah_tfds.body import markers as mk
from odah_tfds.body import retarget as rt

SMPLX_Y_UP_TO_WORLD = np.array([[0.0, 0.0, 1.0], [0.0, 1.0, 0.0], [-1.0, 0.0, 0.0]])
SMPLX_Z_UP_TO_WORLD = np.array([[0.0, -1.0, 0.0], [0.0, 0.0, 1.0], [-1.0, 0.0, 0.0]])
UP_AXIS_TO_WORLD = {'y': SMPLX_Y_UP_TO_WORLD, 'z': SMPLX_Z_UP_TO_WORLD}

SMPLX_REGISTRATION_URL = 'https://smpl-x.is.tue.mpg.de'
SMPLX_FILES = {'neutral': 'SMPLX_NEUTRAL.npz', 'male': 'SMPLX_MALE.npz',
               'female': 'SMPLX_FEMALE.npz'}
# Keys the smplx package reads from a model file, with their expected shapes
# (V vertices, F faces, S >= 20 shape + expression components).
REQUIRED_KEYS = {
    'v_template': ('V', 3), 'f': ('F', 3), 'shapedirs': ('V', 3, 'S'),
    'posedirs': ('V', 3, 486), 'J_regressor': (55, 'V'), 'kintree_table': (2, 55),
    'weights': ('V', 55), 'hands_componentsl': (45, 45), 'hands_componentsr': (45, 45),
    'hands_meanl': (45,), 'hands_meanr': (45,), 'lmk_faces_idx': (51,),
    'lmk_bary_coords': (51, 3),
}
NUM_BODY_JOINTS = 21
NUM_JOINTS = 55
JOINT_NAMES = (
    'pelvis', 'left_hip', 'right_hip', 'spine1', 'left_knee', 'right_knee', 'spine2',
    'left_ankle', 'right_ankle', 'spine3', 'left_foot', 'right_foot', 'neck', 'left_collar',
    'right_collar', 'head', 'left_shoulder', 'right_shoulder', 'left_elbow', 'right_elbow',
    'left_wrist', 'right_wrist', 'jaw', 'left_eye_smplhf', 'right_eye_smplhf') + tuple(
        f'{s}_{f}{k}' for s in ('left', 'right')
        for f in ('index', 'middle', 'pinky', 'ring', 'thumb') for k in (1, 2, 3))
PARENTS = (-1, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 9, 9, 12, 13, 14, 16, 17, 18, 19, 15, 15,
           15, 20, 25, 26, 20, 28, 29, 20, 31, 32, 20, 34, 35, 20, 37, 38, 21, 40, 41, 21,
           43, 44, 21, 46, 47, 21, 49, 50, 21, 52, 53)
# Share of the lumbar rotation per spine joint (cf. anny): spine1 sits just below the
# project model's lumbar joint, spine3 carries the chest.
SPINE_LUMBAR_FRACTIONS = {'spine1': 0.35, 'spine2': 0.7, 'spine3': 1.0}
_SIDE = {'left': '_l', 'right': '_r'}
# SMPL-X joints used as rig joints by the markers and the landmark search.
RIG_JOINTS = {
    'hip': 'hip', 'knee': 'knee', 'ankle': 'ankle', 'shoulder': 'shoulder', 'elbow': 'elbow',
    'wrist': 'wrist', 'index_mcp': 'index1', 'pinky_mcp': 'pinky1', 'collar': 'collar',
}
# Subject sampling (project choices): betas ~ N(0, 1) truncated at +-2.5 (the SMPL-X
# shape space is PCA with unit-variance coefficients) for the first SAMPLED_BETAS.
SAMPLED_BETAS = 10
BETA_TRUNCATION = 2.5
NUM_EXPRESSION = 10
# Frames posed per smplx call (the smplx module is built for this batch size).
POSE_CHUNK = 64
# Joint-centre markers KJC, AJC, EJC, WJC: the model's joints ('rig') rather than landmark
# midpoints ('landmarks'); see `markers.marker_definitions`.
JOINT_CENTRES = 'rig'
# Bony landmarks ride on the joint of their project body ('bony'), or are the skinned
# vertices themselves ('none').
CARRY = 'bony'
# The SMPL-X joint whose transform carries each project body's bony landmarks (sided
# joints get 'left_' / 'right_'). SMPL-X has one forearm joint (the elbow): it carries
# the radius and ulna landmarks, pro/supination included.
SEGMENT_JOINTS = {'pelvis': 'pelvis', 'torso': 'spine3', 'femur': 'hip', 'tibia': 'knee',
                  'foot': 'ankle', 'humerus': 'shoulder', 'ulna': 'elbow', 'radius': 'elbow',
                  'hand': 'wrist'}


class SmplxModelFilesError(base.ManualFilesError):
  """An SMPL-X model file is missing or is not an SMPL-X .npz model file."""


def _missing_message(path: pathlib.Path) -> str:
  return (f'SMPL-X model file not found: {path}. The SMPL-X body model is licensed and '
          f'must be downloaded by hand: register at {SMPLX_REGISTRATION_URL}, download '
          f'"SMPL-X v1.1 (NPZ+PKL)" and put {", ".join(SMPLX_FILES.values())} into '
          f'{path.parent} (for the TFDS builder: <manual_dir>/smplx/).')


def _npz_shapes(path, keys) -> dict[str, tuple[int, ...]]:
  """Array shapes of the `keys` present in an .npz, read from the .npy headers only."""
  shapes = {}
  with zipfile.ZipFile(path) as z:
    members = set(z.namelist())
    for k in keys:
      if k + '.npy' not in members:
        continue
      with z.open(k + '.npy') as f:
        version = np.lib.format.read_magic(f)
        read = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                else np.lib.format.read_array_header_2_0)
        shape, _, _ = read(f)
      shapes[k] = tuple(shape)
  return shapes


def check_model_file(path) -> dict[str, tuple[int, ...]]:
  """Validates an SMPL-X .npz model file; returns the shapes of its required keys.

  Raises:
    SmplxModelFilesError: the file is missing, is not an .npz archive, lacks a key
      smplx needs, or a key has the wrong shape.
  """
  path = pathlib.Path(path)
  if not path.is_file():
    raise SmplxModelFilesError(_missing_message(path))
  bad = (f'{path} is not an SMPL-X model file in .npz format (as downloaded from '
         f'{SMPLX_REGISTRATION_URL}, "SMPL-X v1.1 (NPZ+PKL)"; use the .npz, not the .pkl '
         'files)')
  try:
    if not zipfile.is_zipfile(path):
      raise SmplxModelFilesError(f'{bad}: not an npz archive.')
    shapes = _npz_shapes(path, REQUIRED_KEYS)
  except SmplxModelFilesError:
    raise
  except Exception as e:  # pylint: disable=broad-except
    raise SmplxModelFilesError(f'{bad}: cannot read it ({type(e).__name__}: {e}).') from e
  missing = [k for k in REQUIRED_KEYS if k not in shapes]
  if missing:
    raise SmplxModelFilesError(f'{bad}: missing keys {missing}.')
  sizes: dict[str, int] = {}
  for k, expected in REQUIRED_KEYS.items():
    got = shapes[k]
    ok = len(got) == len(expected)
    for g, e in zip(got, expected):
      if not ok:
        break
      if isinstance(e, str):
        ok = sizes.setdefault(e, g) == g
      else:
        ok = g == e
    if not ok or sizes.get('S', 20) < 20:
      raise SmplxModelFilesError(f'{bad}: key {k!r} has shape {got}, expected {expected}.')
  return shapes


@dataclasses.dataclass(frozen=True)
class SmplxSubject:
  """An SMPL-X subject: model gender ('neutral' / 'male' / 'female') and shape betas."""

  gender: str = 'neutral'
  betas: tuple[float, ...] = ()

  def __post_init__(self):
    if self.gender not in SMPLX_FILES:
      raise ValueError(f"gender must be one of {tuple(SMPLX_FILES)}, got {self.gender!r}")
    object.__setattr__(self, 'betas', tuple(float(b) for b in self.betas))
    if len(self.betas) > 300:
      raise ValueError(f'at most 300 betas, got {len(self.betas)}')

  @property
  def num_betas(self) -> int:
    return max(len(self.betas), SAMPLED_BETAS)

  def betas_array(self) -> np.ndarray:
    b = np.zeros(self.num_betas)
    b[:len(self.betas)] = self.betas
    return b


_POSE_FIELDS = {'global_orient': 3, 'body_pose': 63, 'left_hand_pose': 45,
                'right_hand_pose': 45, 'jaw_pose': 3, 'leye_pose': 3, 'reye_pose': 3,
                'transl': 3}


@dataclasses.dataclass(frozen=True, eq=False)
class SmplxPose:
  """SMPL-X pose parameters for T frames (float64 arrays, axis-angle radians, metres).

  global_orient (T, 3), body_pose (T, 63), left/right_hand_pose (T, 45) full axis-angle
  (no PCA, flat hand mean), jaw_pose, leye_pose, reye_pose (T, 3), transl (T, 3);
  `up_axis` 'y' (SMPL-X model frame) or 'z' (AMASS mocap frame), see the module
  docstring.
  """

  global_orient: np.ndarray
  body_pose: np.ndarray
  left_hand_pose: np.ndarray
  right_hand_pose: np.ndarray
  jaw_pose: np.ndarray
  leye_pose: np.ndarray
  reye_pose: np.ndarray
  transl: np.ndarray
  up_axis: str = 'y'

  def __post_init__(self):
    t = None
    for name, width in _POSE_FIELDS.items():
      a = base.as_frames(getattr(self, name), f'SmplxPose.{name}', (width,))
      object.__setattr__(self, name, a)
      if t is None:
        t = len(a)
      elif len(a) != t:
        raise ValueError(f'SmplxPose.{name} has {len(a)} frames, global_orient {t}')
    if self.up_axis not in UP_AXIS_TO_WORLD:
      raise ValueError(f"up_axis must be 'y' or 'z', got {self.up_axis!r}")

  @property
  def num_frames(self) -> int:
    return len(self.global_orient)

  @staticmethod
  def rest(num_frames: int = 1) -> SmplxPose:
    z = {k: np.zeros((num_frames, w)) for k, w in _POSE_FIELDS.items()}
    return SmplxPose(**z)

  @staticmethod
  def from_amass(poses, trans, up_axis: str = 'z') -> SmplxPose:
    """From AMASS SMPL-X stage-ii arrays: poses (T, 165), trans (T, 3)."""
    p = base.as_frames(poses, 'poses', (165,))
    tr = base.as_frames(trans, 'trans', (3,))
    return SmplxPose(global_orient=p[:, 0:3], body_pose=p[:, 3:66], jaw_pose=p[:, 66:69],
                     leye_pose=p[:, 69:72], reye_pose=p[:, 72:75],
                     left_hand_pose=p[:, 75:120], right_hand_pose=p[:, 120:165], transl=tr,
                     up_axis=up_axis)

  @staticmethod
  def from_arrays(arrays: Mapping[str, np.ndarray], up_axis: str = 'z') -> SmplxPose:
    """From AMASS-style split arrays (root_orient, pose_body, pose_hand (T, 90), pose_jaw,
    pose_eye (T, 6), trans) or a `poses`/`trans` pair; missing parts are zero."""
    if 'poses' in arrays:
      return SmplxPose.from_amass(arrays['poses'], arrays['trans'], up_axis)
    root = base.as_frames(arrays['root_orient'], 'root_orient', (3,))
    t = len(root)

    def get(key, width):
      return base.as_frames(arrays[key], key, (width,)) if key in arrays else np.zeros((t, width))

    hands, eyes = get('pose_hand', 90), get('pose_eye', 6)
    return SmplxPose(global_orient=root, body_pose=get('pose_body', 63),
                     left_hand_pose=hands[:, :45], right_hand_pose=hands[:, 45:],
                     jaw_pose=get('pose_jaw', 3), leye_pose=eyes[:, :3], reye_pose=eyes[:, 3:],
                     transl=get('trans', 3), up_axis=up_axis)


def _joint_body(name: str) -> str | None:
  """Project body a joint's skin region belongs to (for the landmark search)."""
  if name == 'pelvis':
    return 'pelvis'
  if name.startswith(('spine', 'neck')) or name.endswith('collar'):
    return 'torso'
  if name in ('head', 'jaw') or 'eye' in name:
    return 'head'
  side, part = name.split('_', 1)
  region = {'hip': 'femur', 'knee': 'tibia', 'ankle': 'foot', 'foot': 'toes',
            'shoulder': 'humerus', 'elbow': 'forearm', 'wrist': 'hand'}.get(part, 'hand')
  return region + _SIDE[side]


def _joint_driver(name: str) -> rt.BoneDriver:
  if name == 'pelvis':
    return rt.BoneDriver('pelvis')
  if name in SPINE_LUMBAR_FRACTIONS:
    f = SPINE_LUMBAR_FRACTIONS[name]
    return rt.BoneDriver('torso') if f == 1.0 else rt.BoneDriver('torso', 'pelvis', f)
  if '_' in name and name.split('_', 1)[0] in _SIDE:
    side, part = name.split('_', 1)
    body = {'hip': 'femur', 'knee': 'tibia', 'ankle': 'calcn', 'foot': 'toes',
            'shoulder': 'humerus', 'elbow': 'radius', 'wrist': 'hand'}.get(part)
    if body is not None:
      return rt.BoneDriver(body + _SIDE[side])
  return rt.BoneDriver(None)  # neck, head, jaw, eyes, collars, fingers


class SmplxBody(base.BodyModel):
  """SMPL-X backend (see the module docstring).

  Args:
    model_dir: folder with SMPLX_{NEUTRAL,MALE,FEMALE}.npz (at least one).
    marker_vertices: optional name -> vertex id for `markers.SURFACE_LANDMARKS`,
      overriding the landmark search.
    joint_centres: 'rig' (default) or 'landmarks' (`markers.marker_definitions`).
    carry: 'bony' (default) or 'none' (`markers.marker_definitions`).

  Raises:
    SmplxModelFilesError: the folder holds none of the model files, or a present one is
      not a valid SMPL-X .npz.
  """

  NATIVE_TO_WORLD = SMPLX_Y_UP_TO_WORLD

  def __init__(self, model_dir, marker_vertices: Mapping[str, int] | None = None,
               joint_centres: str = JOINT_CENTRES, carry: str = CARRY):
    # Lazy: torch, 1.9 s: only when an SMPL-X body is built.
    import torch  # pylint: disable=g-import-not-at-top
    self._torch = torch
    self.model_dir = pathlib.Path(model_dir)
    present = check_model_dir(self.model_dir)
    self._shapes = {g: check_model_file(self.model_dir / SMPLX_FILES[g]) for g in present}
    self.genders = tuple(present)
    self._reference_gender = present[0]  # dict order: neutral, male, female
    self._models: dict[tuple[str, int], object] = {}
    self._data: dict[str, dict[str, np.ndarray]] = {}
    self._calibrations: dict[SmplxSubject, rt.Calibration] = {}
    ref = self.model_data(self._reference_gender)
    self._faces = ref['f'].astype(np.int32)
    self._num_vertices = int(ref['v_template'].shape[0])
    self.rig = rt.Rig(bone_names=JOINT_NAMES, parents=PARENTS,
                      rest_rotations=np.repeat(SMPLX_Y_UP_TO_WORLD[None], NUM_JOINTS, axis=0),
                      drivers=tuple(_joint_driver(n) for n in JOINT_NAMES))
    self._joint_index = {}
    for j, suffix in RIG_JOINTS.items():
      for s, side in (('r', 'right'), ('l', 'left')):
        self._joint_index[f'{j}_{s}'] = JOINT_NAMES.index(f'{side}_{suffix}')
    if marker_vertices is None:
      marker_vertices = mk.find_landmark_vertices(self.rest_geometry())
    self.marker_vertices = dict(marker_vertices)
    self.marker_definitions = mk.marker_definitions(
        self.marker_vertices, shoulder_joints=('shoulder_r', 'shoulder_l'),
        hip=('hip_r', 'hip_l'), joint_centres=joint_centres, carry=carry)
    # (vertex, segment, carrying joint index) of the carried markers.
    self._carried = tuple((v, seg, self._segment_joint(seg))
                          for v, seg in sorted(mk.carried_vertices(self.marker_definitions)))
    # Per subject: its zero-pose joints (55, 3) and carried vertices (K, 3), native frame.
    self._rest: dict[SmplxSubject, tuple[np.ndarray, np.ndarray]] = {}

  # ---- files and models --------------------------------------------------------------------
  def model_path(self, gender: str) -> pathlib.Path:
    path = self.model_dir / SMPLX_FILES[gender]
    if gender not in self._shapes:
      self._shapes[gender] = check_model_file(path)
    return path

  def model_data(self, gender: str) -> dict[str, np.ndarray]:
    """Template arrays of a model file (v_template, f, J_regressor, weights); cached on
    this instance."""
    if gender not in self._data:
      with np.load(self.model_path(gender), allow_pickle=False) as d:
        self._data[gender] = {k: np.array(d[k])
                              for k in ('v_template', 'f', 'J_regressor', 'weights')}
    return self._data[gender]

  def load(self, gender: str, num_betas: int = SAMPLED_BETAS):
    """The smplx.SMPLX module for a gender and number of betas (built once, cached)."""
    key = (gender, int(num_betas))
    if key not in self._models:
      # Lazy: smplx + torch, 2 s: only when a model is loaded.
      import smplx  # pylint: disable=g-import-not-at-top
      path = self.model_path(gender)
      self._models[key] = smplx.SMPLX(
          model_path=str(path), gender=gender, num_betas=int(num_betas),
          num_expression_coeffs=NUM_EXPRESSION, use_pca=False, flat_hand_mean=True,
          batch_size=POSE_CHUNK, dtype=self._torch.float32)
    return self._models[key]

  # ---- BodyModel -------------------------------------------------------------------------
  @property
  def name(self) -> str:
    return 'smplx'

  @property
  def faces(self) -> np.ndarray:
    return self._faces

  @property
  def num_vertices(self) -> int:
    return self._num_vertices

  def sample_subject(self, rng: np.random.Generator) -> SmplxSubject:
    """Gender uniform over the male / female files present (neutral if neither is),
    betas[:10] ~ N(0, 1) truncated at +-2.5."""
    if not isinstance(rng, np.random.Generator):
      raise TypeError(f'rng must be a numpy Generator (np.random.default_rng(seed)), got {rng!r}')
    choices = [g for g in ('male', 'female') if g in self.genders] or ['neutral']
    gender = choices[int(rng.integers(len(choices)))]
    betas = np.clip(rng.standard_normal(SAMPLED_BETAS), -BETA_TRUNCATION, BETA_TRUNCATION)
    return SmplxSubject(gender, tuple(betas))

  def pose(self, shape: SmplxSubject, native_poses: SmplxPose, root_translation=None
           ) -> base.BodyFrames:
    """Vertices and markers (world frame, float32).

    root_translation: (T, 3) world position of the pelvis joint; None keeps SMPL-X's
    placement (native transl, converted to the world frame).
    """
    if not isinstance(shape, SmplxSubject):
      raise TypeError(f'shape must be a SmplxSubject, got {type(shape).__name__}')
    if not isinstance(native_poses, SmplxPose):
      raise TypeError(f'native_poses must be a SmplxPose, got {type(native_poses).__name__}')
    t = native_poses.num_frames
    roots = None
    if root_translation is not None:
      roots = base.as_frames(root_translation, 'root_translation', (3,))
      if len(roots) != t:
        raise ValueError(f'root_translation has {len(roots)} frames, the poses {t}')
    verts, joints = self._forward(shape, native_poses)
    carried = self._carried_points(shape, native_poses)
    n = UP_AXIS_TO_WORLD[native_poses.up_axis]
    if roots is not None:
      origin = joints[:, :1]
      verts = (verts - origin) @ n.T + roots[:, None]
      carried = (carried - origin) @ n.T + roots[:, None]
      joints = (joints - origin) @ n.T + roots[:, None]
    else:
      verts, joints, carried = verts @ n.T, joints @ n.T, carried @ n.T
    rig_joints = {j: joints[:, i] for j, i in self._joint_index.items()}
    carried = {(v, seg): carried[:, k] for k, (v, seg, _) in enumerate(self._carried)}
    markers = mk.evaluate_markers(self.marker_definitions, self.marker_names, verts, rig_joints,
                                  carried=carried)
    return base.BodyFrames(vertices=verts.astype(np.float32), markers=markers.astype(np.float32),
                           marker_names=self.marker_names, faces=self._faces,
                           body_model=self.name, shape=shape, native_poses=native_poses,
                           root_translation=roots)

  def _forward(self, shape: SmplxSubject, p: SmplxPose):
    """Native vertices (T, V, 3) and the 55 joints (T, 55, 3), float64."""
    torch = self._torch
    model = self.load(shape.gender, shape.num_betas)
    t = p.num_frames
    fields = {k: getattr(p, k) for k in _POSE_FIELDS}
    betas = np.repeat(shape.betas_array()[None], POSE_CHUNK, axis=0)
    verts, joints = [], []
    with torch.no_grad():
      for start in range(0, t, POSE_CHUNK):
        n = min(POSE_CHUNK, t - start)
        batch = {}
        for k, a in fields.items():
          chunk = a[start:start + n]
          chunk = np.concatenate([chunk, np.zeros((POSE_CHUNK - n, chunk.shape[1]))])
          batch[k] = torch.as_tensor(chunk, dtype=torch.float32)
        out = model(betas=torch.as_tensor(betas, dtype=torch.float32),
                    expression=torch.zeros(POSE_CHUNK, NUM_EXPRESSION), return_verts=True,
                    **batch)
        verts.append(out.vertices[:n].double().numpy())
        joints.append(out.joints[:n, :NUM_JOINTS].double().numpy())
    return np.concatenate(verts), np.concatenate(joints)

  def _segment_joint(self, segment: str) -> int:
    """Index of the SMPL-X joint carrying a project body's landmarks ('humerus_r')."""
    body, side = (segment[:-2], segment[-1]) if segment[-2:] in ('_r', '_l') else (segment, '')
    if body not in SEGMENT_JOINTS:
      raise ValueError(f'no SMPL-X joint carries segment {segment!r}; known: '
                       f'{sorted(SEGMENT_JOINTS)}')
    prefix = {'r': 'right_', 'l': 'left_', '': ''}[side]
    return JOINT_NAMES.index(prefix + SEGMENT_JOINTS[body])

  def _rest_state(self, shape: SmplxSubject) -> tuple[np.ndarray, np.ndarray]:
    """Zero-pose joints (55, 3) and carried marker vertices (K, 3) of `shape`, native
    frame, zero translation (float64; cached per subject). At the zero pose the pose
    correctives vanish and every LBS transform is the identity, so these are the
    shaped template's regressed joints and vertices."""
    if shape not in self._rest:
      verts, joints = self._forward(shape, SmplxPose.rest(1))
      vertex = np.array([v for v, _, _ in self._carried], np.int64)
      self._rest[shape] = (joints[0], verts[0, vertex])
    return self._rest[shape]

  def _carried_points(self, shape: SmplxSubject, p: SmplxPose) -> np.ndarray:
    """(T, K, 3) native positions of the carried marker vertices: each rest vertex moved
    by its carrying joint's rigid LBS transform (SMPL-X's kinematic chain on the
    subject's zero-pose joints), plus the translation, as smplx places joints."""
    t = p.num_frames
    if not self._carried:
      return np.zeros((t, 0, 3))
    rest_joints, rest_vertices = self._rest_state(shape)
    n = 1 + NUM_BODY_JOINTS  # the carrying joints are all body joints
    rotvecs = np.concatenate([p.global_orient[:, None], p.body_pose.reshape(t, -1, 3)], axis=1)
    local = Rotation.from_rotvec(rotvecs.reshape(-1, 3)).as_matrix().reshape(t, n, 3, 3)
    rot = np.empty_like(local)
    pos = np.empty((t, n, 3))
    rot[:, 0], pos[:, 0] = local[:, 0], rest_joints[0]
    for j in range(1, n):
      parent = PARENTS[j]
      rot[:, j] = rot[:, parent] @ local[:, j]
      pos[:, j] = pos[:, parent] + rot[:, parent] @ (rest_joints[j] - rest_joints[parent])
    joint = np.array([j for _, _, j in self._carried], np.int64)
    offsets = rest_vertices - rest_joints[joint]  # (K, 3)
    return (np.einsum('tkij,kj->tki', rot[:, joint], offsets) + pos[:, joint]
            + p.transl[:, None])

  def native_root_translation(self, shape: SmplxSubject, native_poses: SmplxPose
                              ) -> np.ndarray:
    """(T, 3) world position of the pelvis joint under SMPL-X's own placement (what
    `pose(shape, native_poses)` gives it): NATIVE_TO_WORLD(up_axis) @ (zero-pose
    pelvis joint + transl); the root joint is not moved by its own rotation."""
    pelvis = self._rest_state(shape)[0][0]
    return (pelvis + native_poses.transl) @ UP_AXIS_TO_WORLD[native_poses.up_axis].T

  # ---- rest geometry, calibration, retargeting -----------------------------------------------
  def rest_geometry(self, gender: str | None = None) -> mk.RestGeometry:
    """World-frame zero-shape template (the T-pose), its regressed joints and body-region
    skinning weights, for `markers.find_landmark_vertices`."""
    data = self.model_data(gender or self._reference_gender)
    v = data['v_template'].astype(np.float64)
    joints = data['J_regressor'].astype(np.float64) @ v
    v = v @ SMPLX_Y_UP_TO_WORLD.T
    joints = joints @ SMPLX_Y_UP_TO_WORLD.T
    w = data['weights'].astype(np.float64)
    regions = {}
    for r in mk.REQUIRED_REGIONS:
      member = np.array([_joint_body(n) == r for n in JOINT_NAMES])
      regions[r] = w[:, member].sum(axis=1)
    return mk.RestGeometry(v, {j: joints[i] for j, i in self._joint_index.items()}, regions)

  def calibration(self, subject: SmplxSubject) -> rt.Calibration:
    """Retargeting calibration (cached per subject on this instance)."""
    if subject not in self._calibrations:
      self._calibrations[subject] = rt.calibrate(self, subject, SmplxPose.rest(1))
    return self._calibrations[subject]

  def retarget(self, shape: SmplxSubject, motion_coordinates, calibration=None
               ) -> tuple[SmplxPose, np.ndarray]:
    """Project coordinates (T, 39) -> (SmplxPose in the 'y'-up frame with zero hands,
    face and transl, root_translation (T, 3) world position of the pelvis joint)."""
    cal = calibration or self.calibration(shape)
    local, roots = rt.retarget_rotations(self.rig, motion_coordinates, cal)
    rv = Rotation.from_matrix(local.reshape(-1, 3, 3)).as_rotvec().reshape(local.shape[:2] + (3,))
    t = len(rv)
    zeros = np.zeros((t, 3))
    pose = SmplxPose(global_orient=rv[:, 0], body_pose=rv[:, 1:1 + NUM_BODY_JOINTS].reshape(t, -1),
                     left_hand_pose=np.zeros((t, 45)), right_hand_pose=np.zeros((t, 45)),
                     jaw_pose=zeros, leye_pose=zeros, reye_pose=zeros, transl=zeros,
                     up_axis='y')
    return pose, roots

  def pose_motion(self, shape: SmplxSubject, motion_coordinates) -> base.BodyFrames:
    poses, roots = self.retarget(shape, motion_coordinates)
    return self.pose(shape, poses, roots)


def check_model_dir(model_dir, genders: Sequence[str] | None = None) -> tuple[str, ...]:
  """The genders whose model files are present in `model_dir` (validated).

  Args:
    model_dir: the folder that should hold SMPLX_{NEUTRAL,MALE,FEMALE}.npz.
    genders: genders that must be present; None: at least one, any.

  Raises:
    SmplxModelFilesError: a required file (or, with genders=None, every file) is
      missing, or a present file is not a valid SMPL-X .npz; the message names the
      expected path and where to get it.
  """
  model_dir = pathlib.Path(model_dir)
  present = tuple(g for g, f in SMPLX_FILES.items() if (model_dir / f).is_file())
  if genders is None:
    if not present:
      raise SmplxModelFilesError(_missing_message(model_dir / SMPLX_FILES['neutral']))
  else:
    for g in genders:
      if g not in SMPLX_FILES:
        raise ValueError(f'gender must be one of {tuple(SMPLX_FILES)}, got {g!r}')
      if g not in present:
        raise SmplxModelFilesError(_missing_message(model_dir / SMPLX_FILES[g]))
  for g in present:
    check_model_file(model_dir / SMPLX_FILES[g])
  return present


def required_files(model_dir, genders: Sequence[str] = tuple(SMPLX_FILES)) -> list[pathlib.Path]:
  """Paths the SMPL-X backend reads for `genders` (for manual-download instructions)."""
  return [pathlib.Path(model_dir) / SMPLX_FILES[g] for g in genders]
