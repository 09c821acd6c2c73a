"""The anny body backend (default, free): subjects, posing, markers, retargeting.

anny (PyPI `anny`, Apache-2.0, NAVER Labs; mesh and rig from MakeHuman's CC0 assets)
is a torch module. `anny.Anny()` (default configuration: 'anny' rig of 104 bones and
'anny' topology of 13,718 vertices / 27,420 triangles, float64) is built once per
process through `anny_model()` (an explicit cache; the first build in a fresh
environment also writes anny's own disk cache, ~60 s once).

Native frame (Blender convention): x = the subject's left, y = posterior, z = up,
metres; the root bone's head (between the hip joints) is the origin. World = the
project model's ground frame (x anterior, y up, z right):

  p_world = ANNY_NATIVE_TO_WORLD @ p_native,  ANNY_NATIVE_TO_WORLD = [[0, -1, 0],
                                                                      [0,  0, 1],
                                                                      [-1, 0, 0]]

plus the root translation (world position of the root bone's head).

Native pose = `AnnyPose`: per frame and bone, the rotation relative to the bone's
reference pose in its reference frame (anny's 'local-bone' deltas, axis-angle), the
root's being its world orientation in native axes. All-zero = anny's rest posture
(an A-pose with the arms ~45 deg abducted and the elbows slightly bent).

Subjects are drawn from documented phenotype distributions (`sample_subject`, see the
README table); the anny 'height' phenotype is solved so that the mesh reaches a
sampled stature in metres.
"""

from __future__ import annotations

import dataclasses
import functools
import pathlib
from collections.abc import Mapping

import numpy as np
from scipy.spatial.transform import Rotation

from odah_tfds.body import base
from odah_tfds.body import markers as mk
from odah_tfds.body import retarget as rt

ANNY_NATIVE_TO_WORLD = np.array([[0.0, -1.0, 0.0], [0.0, 0.0, 1.0], [-1.0, 0.0, 0.0]])

PHENOTYPE_LABELS = ('gender', 'age', 'muscle', 'weight', 'height', 'proportions')

# ---- subject distribution (project choices; see README) --------------------------------
P_FEMALE = 0.5
# anny 'gender' phenotype: 0 = male, 1 = female; drawn uniformly in these ranges.
GENDER_RANGE = {'male': (0.0, 0.1), 'female': (0.9, 1.0)}
# Age in years, uniform: teenagers to elderly.
AGE_YEARS_RANGE = (13.0, 80.0)
# Mean stature (m) by age, linear in between, and its SD; truncated at +-2 SD.
# Project estimates rounded from the WHO 2007 growth reference medians (13-17 y) and
# typical adult statures, with ~4 cm of age-related loss by 80 y.
STATURE_MEAN_BY_AGE = {
    'male': ((13.0, 1.56), (15.0, 1.70), (17.0, 1.75), (60.0, 1.76), (80.0, 1.72)),
    'female': ((13.0, 1.57), (15.0, 1.62), (17.0, 1.63), (60.0, 1.63), (80.0, 1.59)),
}
STATURE_SD = {'male': 0.07, 'female': 0.065}
STATURE_TRUNCATION_SD = 2.0
# Beta(a, b) distributions of the other anny phenotypes (all in [0, 1], 0.5 = average).
MUSCLE_BETA = (2.5, 2.5)
WEIGHT_BETA = (2.0, 2.0)
PROPORTIONS_BETA = (1.5, 3.0)  # 0 = ideal, 1 = uncommon proportions: mostly ideal-ish

# anny's own age mapping (anny 'age' phenotype <-> years), from the wheel's
# data/shape_calibration/{boys,girls}.pth 'morphological_age_mapping' (anny 0.6.2).
ANNY_AGE_ANCHORS = (0.0, 0.05, 0.215, 0.415, 0.67, 0.77, 0.83, 1.0)
ANNY_AGE_YEARS = (0.0, 1.0, 4.0, 11.0, 16.0, 18.0, 64.0, 110.0)

# Heights sampled to solve the anny 'height' phenotype for a stature (monotonic).
_HEIGHT_GRID = np.linspace(0.0, 1.0, 9)

# ---- rig mapping ---------------------------------------------------------------------------
# Share of the lumbar rotation (pelvis -> torso) each spine bone takes. The project
# model's torso is rigid and turns about one lumbar joint, at the height of the head of
# anny's spine03 (~4 cm anterior of it); spine05 / spine04 skin the pelvis (ASIS/PSIS)
# and stay with it, and spine03 and everything above it (spine02/01, neck, head,
# clavicles) follow the torso rigidly, so that the chest, shoulders and head move as
# the model's torso does. (A bend spread over spine03..spine01 looks smoother but
# turns the upper body about pivots 7-20 cm higher: at 40 deg of trunk flexion the
# chest and head then end 8-10 cm from the model's torso, against ~3-4 cm here.)
SPINE_LUMBAR_FRACTIONS = {'spine05': 0.0, 'spine04': 0.0, 'spine03': 1.0, 'spine02': 1.0,
                          'spine01': 1.0}
# Joint-centre markers KJC, AJC, EJC, WJC: the rig's joints ('rig', what the mesh rotates
# about) rather than landmark midpoints (see `markers.marker_definitions`).
JOINT_CENTRES = 'rig'
# Bony landmarks ride on the rig bone of their project body (see
# `markers.BoneVertexMarker`): 'bony', or 'none' for the skinned vertices themselves.
CARRY = 'bony'
# The rig bone that carries each project body's bony landmarks (sided: '.R' / '.L').
SEGMENT_BONES = {'pelvis': 'root', 'torso': 'spine01', 'femur': 'upperleg02',
                 'tibia': 'lowerleg01', 'foot': 'foot', 'humerus': 'upperarm02',
                 'ulna': 'lowerarm01', 'radius': 'lowerarm02', 'hand': 'wrist'}
# Rig joints (bone heads) used as markers and by the landmark search.
RIG_JOINTS = {
    'hip': 'upperleg01', 'knee': 'lowerleg01', 'ankle': 'foot', 'shoulder': 'upperarm01',
    'elbow': 'lowerarm01', 'wrist': 'wrist', 'index_mcp': 'finger2-1', 'pinky_mcp': 'finger5-1',
    'collar': 'clavicle',
}

# ---- virtual markers: frozen vertex ids ------------------------------------------------------
# Output of `markers.find_landmark_vertices(anny_rest_geometry(body))` on the default
# phenotype (all phenotypes 0.5), anny 0.6.2 default topology; the same ids serve every
# subject. tests/test_body_anny.py re-runs the search (slow) and checks these.
ANNY_MARKER_VERTICES = {
    'RASI': 4382, 'RPSI': 4176, 'RGTR': 4280, 'RLFC': 4595, 'RMFC': 6389, 'RLMAL': 6223,
    'RMMAL': 6326, 'RCAL': 5840, 'RTOE': 6696, 'RMT1': 5777, 'RMT5': 6180, 'RHLX': 6143,
    'RACR': 1547, 'RLEL': 3372, 'RMEL': 3385, 'RWRB': 3874, 'RWRA': 3755, 'RMCP2': 3145,
    'RMCP5': 3135, 'RFHD': 232, 'RBHD': 960, 'RHEAD': 979,
    'LASI': 10984, 'LPSI': 10799, 'LGTR': 10894, 'LLFC': 11197, 'LMFC': 12970, 'LLMAL': 12804,
    'LMMAL': 12907, 'LCAL': 12421, 'LTOE': 13276, 'LMT1': 12358, 'LMT5': 12761, 'LHLX': 12724,
    'LACR': 8210, 'LLEL': 10024, 'LMEL': 10037, 'LWRB': 10523, 'LWRA': 10406, 'LMCP2': 9797,
    'LMCP5': 9787, 'LFHD': 6989, 'LBHD': 7642, 'LHEAD': 7659,
    'C7': 858, 'CLAV': 1528, 'STRN': 4072, 'T10': 3944, 'FHEAD': 234, 'BHEAD': 5373,
    'HEAD_TOP': 881,
}
ANNY_NUM_VERTICES = 13718
# Frames posed per anny call (bounds memory for long motions).
POSE_CHUNK = 128


@functools.lru_cache(maxsize=1)
def anny_model():
  """The process-wide `anny.Anny()` instance (default configuration, CPU, float64).

  Explicit cache: built on first use and shared; do not mutate it (e.g. `.to()`).
  """
  # Lazy: anny + torch, ~3 s: only when a body is built; the TFDS builder imports this module.
  import anny  # pylint: disable=g-import-not-at-top
  return anny.Anny()


def anny_data_dir() -> pathlib.Path:
  import anny.paths  # pylint: disable=g-import-not-at-top  (anny + torch, ~3 s: only for textures)
  return pathlib.Path(anny.paths.get_anny_root_dir()) / 'data'


def anny_texture_paths() -> dict[str, object]:
  """Image files the anny wheel ships for texturing, keyed by role.

  anny 0.6.2 ships no diffuse (colour) skin texture. MakeHuman/MPFB build skin colour
  procedurally ('enhanced skin' node tree) from grayscale region masks in the default
  UV layout -- `skin_masks`: face, lips, ears, eyelids, finger/toe nails, aureolae,
  crotch, genitals, inside of the mouth (2048x2048, L) -- and a constant subsurface map
  (`sss`, uniform grey RGBA). `uv_layout` (1024x1024 RGB) shows the UV charts and
  `body_parts_segmentation` (+ `.yaml` legend) labels body parts in UV space. All use
  the mesh's texture coordinates (`AnnyBody.texture_coordinates`, indexed per face by
  `AnnyBody.face_texture_coordinate_indices`). A renderer can shade a flat skin tone
  modulated by these masks.
  """
  d = anny_data_dir()
  masks = {p.stem.removeprefix('mpfb_'): p for p in sorted((d / 'mpfb2' / 'textures').glob('mpfb_*.jpg'))}
  return {
      'skin_masks': masks,
      'sss': d / 'mpfb2' / 'textures' / 'sss.png',
      'uv_layout': d / 'segmentation' / 'uv_layout.png',
      'body_parts_segmentation': d / 'segmentation' / 'body_parts_segmentation.png',
      'body_parts_segmentation_legend': d / 'segmentation' / 'body_parts_segmentation.yaml',
  }


def years_to_anny_age(years: float) -> float:
  """anny 'age' phenotype for an age in years (anny's own piecewise-linear mapping)."""
  return float(np.interp(years, ANNY_AGE_YEARS, ANNY_AGE_ANCHORS))


def anny_age_to_years(age: float) -> float:
  return float(np.interp(age, ANNY_AGE_ANCHORS, ANNY_AGE_YEARS))


def stature_mean(sex: str, age_years: float) -> float:
  """Mean stature (m) of the sampling distribution."""
  ages, means = zip(*STATURE_MEAN_BY_AGE[sex])
  return float(np.interp(age_years, ages, means))


@dataclasses.dataclass(frozen=True)
class AnnySubject:
  """An anny subject: the six anny phenotypes (each in [0, 1]) plus what they mean.

  Attributes:
    gender: 0 = male .. 1 = female.
    age: anny age phenotype (`anny_age_to_years`).
    muscle, weight, proportions: 0.5 = average.
    height: anny height phenotype (solved for `stature_m` by `sample_subject`).
    sex: 'male' / 'female' as sampled ('' when built by hand).
    age_years: the sampled age (None when built by hand).
    stature_m: the mesh's rest-posture height (top of head to soles) for this subject
      (None when built by hand; `AnnyBody.stature` measures it).
  """

  gender: float = 0.5
  age: float = 0.5
  muscle: float = 0.5
  weight: float = 0.5
  height: float = 0.5
  proportions: float = 0.5
  sex: str = ''
  age_years: float | None = None
  stature_m: float | None = None

  def __post_init__(self):
    for label in PHENOTYPE_LABELS:
      value = getattr(self, label)
      if not 0.0 <= value <= 1.0:
        raise ValueError(f'anny phenotype {label} must lie in [0, 1], got {value}')

  def phenotype_kwargs(self) -> dict[str, float]:
    return {label: float(getattr(self, label)) for label in PHENOTYPE_LABELS}


@dataclasses.dataclass(frozen=True, eq=False)
class AnnyPose:
  """anny native pose: `rotvecs` (T, 104, 3) float64 axis-angle 'local-bone' deltas
  (bone order = `AnnyBody.bone_labels`); zeros = the rest posture."""

  rotvecs: np.ndarray

  def __post_init__(self):
    r = np.asarray(self.rotvecs)
    if r.ndim != 3 or r.shape[2] != 3 or r.shape[0] < 1:
      raise ValueError(f'AnnyPose.rotvecs must have shape (T, bones, 3), got {r.shape}')

  @property
  def num_frames(self) -> int:
    return int(np.shape(self.rotvecs)[0])

  @staticmethod
  def rest(num_frames: int, num_bones: int = 104) -> AnnyPose:
    return AnnyPose(np.zeros((num_frames, num_bones, 3)))


def _bone_body(label: str) -> str | None:
  """Project body whose skin region a bone belongs to (for the landmark search)."""
  side = {'L': 'l', 'R': 'r'}.get(label.rsplit('.', 1)[-1]) if '.' in label else None
  if label == 'root' or label.startswith(('pelvis.', 'spine05', 'spine04')):
    return 'pelvis'
  if label.startswith(('spine', 'clavicle', 'shoulder01', 'neck')):
    return 'torso'
  if label == 'head':
    return 'head'
  if side is None:
    return None  # eyes
  for prefix, body in (('upperleg', 'femur'), ('lowerleg', 'tibia'), ('foot', 'foot'),
                       ('toe', 'toes'), ('upperarm', 'humerus'), ('lowerarm', 'forearm'),
                       ('wrist', 'hand'), ('finger', 'hand'), ('metacarpal', 'hand')):
    if label.startswith(prefix):
      return f'{body}_{side}'
  return None


def _bone_driver(label: str) -> rt.BoneDriver:
  side = {'L': '_l', 'R': '_r'}.get(label.rsplit('.', 1)[-1], '') if '.' in label else ''
  if label == 'root':
    return rt.BoneDriver('pelvis')
  if label in SPINE_LUMBAR_FRACTIONS:
    f = SPINE_LUMBAR_FRACTIONS[label]
    if f == 0.0:
      return rt.BoneDriver('pelvis')
    if f == 1.0:
      return rt.BoneDriver('torso')
    return rt.BoneDriver('torso', blend_from='pelvis', fraction=f)
  for prefix, body in (('upperleg', 'femur'), ('lowerleg', 'tibia'), ('foot', 'calcn'),
                       ('toe', 'toes'), ('upperarm', 'humerus'), ('lowerarm01', 'ulna'),
                       ('lowerarm02', 'radius'), ('wrist', 'hand')):
    if label.startswith(prefix):
      return rt.BoneDriver(body + side)
  # pelvis.L/R, clavicles, shoulder01, neck, head, eyes, fingers: rigid with the parent.
  return rt.BoneDriver(None)


class AnnyBody(base.BodyModel):
  """anny backend (see the module docstring).

  Args:
    model: an `anny.Anny` instance with the default configuration; default: the shared
      `anny_model()`.
  """

  NATIVE_TO_WORLD = ANNY_NATIVE_TO_WORLD

  def __init__(self, model=None):
    import torch  # pylint: disable=g-import-not-at-top  (torch, 1.5 s: only when a body is built)
    self._torch = torch
    self._model = model if model is not None else anny_model()
    m = self._model
    self.bone_labels: tuple[str, ...] = tuple(m.bone_labels)
    self._parents = tuple(int(p) for p in m.bone_parents)
    self._faces = m.faces.detach().cpu().numpy().astype(np.int32)
    if self._faces.ndim != 2 or self._faces.shape[1] != 3:
      raise ValueError('the anny model must have triangular faces (default topology)')
    self._num_vertices = int(m.template_vertices.shape[0])
    if self._num_vertices != ANNY_NUM_VERTICES:
      raise ValueError(f'expected the default anny topology ({ANNY_NUM_VERTICES} vertices), '
                       f'got {self._num_vertices}: the frozen marker vertex ids would not apply')
    self._bone_index = {b: i for i, b in enumerate(self.bone_labels)}
    # Rest (reference) orientations: phenotype-independent in anny.
    u = m.reference_bone_orientations.detach().cpu().numpy()
    self.rig = rt.Rig(
        bone_names=self.bone_labels, parents=self._parents,
        rest_rotations=np.einsum('ij,bjk->bik', ANNY_NATIVE_TO_WORLD, u),
        drivers=tuple(_bone_driver(b) for b in self.bone_labels))
    self.marker_definitions = mk.marker_definitions(
        ANNY_MARKER_VERTICES, shoulder_joints=('shoulder_r', 'shoulder_l'),
        hip=('hip_r', 'hip_l'), joint_centres=JOINT_CENTRES, carry=CARRY)
    # (vertex, segment) pairs of the carried markers, with their carrying bone index.
    self._carried = tuple((v, seg, self._segment_bone(seg))
                          for v, seg in sorted(mk.carried_vertices(self.marker_definitions)))
    self._joint_bones = {f'{j}_{s}': self._bone_index[f'{b}.{S}']
                         for j, b in RIG_JOINTS.items() for s, S in (('r', 'R'), ('l', 'L'))}
    self._calibrations: dict[AnnySubject, rt.Calibration] = {}
    self._carry_offsets: dict[AnnySubject, np.ndarray] = {}

  # ---- BodyModel ------------------------------------------------------------------------
  @property
  def name(self) -> str:
    return 'anny'

  @property
  def faces(self) -> np.ndarray:
    return self._faces

  @property
  def num_vertices(self) -> int:
    return self._num_vertices

  @property
  def model(self):
    """The underlying `anny.Anny` torch module (shared; do not mutate)."""
    return self._model

  @property
  def texture_coordinates(self) -> np.ndarray:
    """(N_uv, 2) float32 UVs in [0, 1]."""
    return self._model.texture_coordinates.detach().cpu().numpy().astype(np.float32)

  @property
  def face_texture_coordinate_indices(self) -> np.ndarray:
    """(F, 3) int32: UV index of each face corner (faces as `faces`)."""
    return self._model.face_texture_coordinate_indices.detach().cpu().numpy().astype(np.int32)

  def sample_subject(self, rng: np.random.Generator) -> AnnySubject:
    """A random subject (distributions: module constants, README table).

    Deterministic for a given generator state. Draws sex, age, gender, muscle, weight,
    proportions and a stature, then solves the anny height phenotype so the rest mesh
    has that stature (clipped to what anny can reach for the other phenotypes).
    """
    if not isinstance(rng, np.random.Generator):
      raise TypeError(f'rng must be a numpy Generator (np.random.default_rng(seed)), got {rng!r}')
    sex = 'female' if rng.random() < P_FEMALE else 'male'
    age_years = float(rng.uniform(*AGE_YEARS_RANGE))
    gender = float(rng.uniform(*GENDER_RANGE[sex]))
    muscle = float(rng.beta(*MUSCLE_BETA))
    weight = float(rng.beta(*WEIGHT_BETA))
    proportions = float(rng.beta(*PROPORTIONS_BETA))
    z = float(np.clip(rng.standard_normal(), -STATURE_TRUNCATION_SD, STATURE_TRUNCATION_SD))
    target = stature_mean(sex, age_years) + z * STATURE_SD[sex]
    subject = AnnySubject(gender=gender, age=years_to_anny_age(age_years), muscle=muscle,
                          weight=weight, height=0.5, proportions=proportions, sex=sex,
                          age_years=age_years)
    height, stature = self.solve_height(subject, target)
    return dataclasses.replace(subject, height=height, stature_m=stature)

  def solve_height(self, subject: AnnySubject, stature_m: float) -> tuple[float, float]:
    """(anny height phenotype, reached stature) giving `subject` the stature `stature_m`
    (the other phenotypes fixed), by interpolating statures on a height grid."""
    statures = self.stature(subject, heights=_HEIGHT_GRID)
    if np.any(np.diff(statures) <= 0):
      raise RuntimeError(f'anny stature is not increasing with height: {statures}')
    reached = float(np.clip(stature_m, statures[0], statures[-1]))
    return float(np.interp(reached, statures, _HEIGHT_GRID)), reached

  def stature(self, subject: AnnySubject, heights=None) -> np.ndarray | float:
    """Rest-posture mesh height (m) of `subject`, or for each value of `heights`."""
    torch = self._torch
    kw = subject.phenotype_kwargs()
    if heights is not None:
      kw = {k: torch.full((len(heights),), v, dtype=torch.float64) for k, v in kw.items()}
      kw['height'] = torch.as_tensor(np.asarray(heights, dtype=np.float64))
    with torch.no_grad():
      out = self._model(pose_parameters=None, phenotype_kwargs=kw)
    v = out['vertices'].detach().cpu().numpy()
    s = v[..., 2].max(axis=1) - v[..., 2].min(axis=1)
    return s if heights is not None else float(s[0])

  def pose(self, shape: AnnySubject, native_poses: AnnyPose, root_translation=None
           ) -> base.BodyFrames:
    """Vertices and markers (world frame, float32) for `native_poses` (T frames).

    root_translation: (T, 3) world position of the root bone's head; None puts it at
    the world origin.
    """
    if not isinstance(shape, AnnySubject):
      raise TypeError(f'shape must be an AnnySubject, got {type(shape).__name__}')
    rotvecs = np.asarray(native_poses.rotvecs, dtype=np.float64)
    t = rotvecs.shape[0]
    if rotvecs.shape != (t, len(self.bone_labels), 3):
      raise ValueError(f'AnnyPose.rotvecs must have shape (T, {len(self.bone_labels)}, 3), '
                       f'got {rotvecs.shape}')
    roots = None
    if root_translation is not None:
      roots = base.as_frames(root_translation, 'root_translation', (3,))
      if len(roots) != t:
        raise ValueError(f'root_translation has {len(roots)} frames, the poses {t}')
    verts, heads, carried = self._forward(shape, rotvecs)
    verts = verts @ ANNY_NATIVE_TO_WORLD.T
    heads = heads @ ANNY_NATIVE_TO_WORLD.T
    carried = carried @ ANNY_NATIVE_TO_WORLD.T
    if roots is not None:
      verts += roots[:, None]
      heads += roots[:, None]
      carried += roots[:, None]
    joints = {j: heads[:, b] for j, b in self._joint_bones.items()}
    carried = {(v, seg): carried[:, k] for k, (v, seg, _) in enumerate(self._carried)}
    markers = mk.evaluate_markers(self.marker_definitions, self.marker_names, verts, joints,
                                  carried=carried)
    return base.BodyFrames(vertices=verts.astype(np.float32), markers=markers.astype(np.float32),
                           marker_names=self.marker_names, faces=self._faces,
                           body_model=self.name, shape=shape, native_poses=native_poses,
                           root_translation=roots)

  def _segment_bone(self, segment: str) -> int:
    """Index of the rig bone carrying a project body's landmarks ('humerus_r', 'torso')."""
    body, _, side = segment.rpartition('_') if segment[-2:] in ('_r', '_l') else (segment, '', '')
    if body not in SEGMENT_BONES:
      raise ValueError(f'no anny bone carries segment {segment!r}; known: {sorted(SEGMENT_BONES)}')
    label = SEGMENT_BONES[body] + (f'.{side.upper()}' if side else '')
    return self._bone_index[label]

  def _posed(self, subject: AnnySubject, deltas: np.ndarray):
    """anny's forward pass: native vertices (T, V, 3) and bone poses (T, B, 4, 4)."""
    torch = self._torch
    verts, poses = [], []
    kw = subject.phenotype_kwargs()
    with torch.no_grad():
      for start in range(0, len(deltas), POSE_CHUNK):
        out = self._model(pose_parameters=torch.from_numpy(deltas[start:start + POSE_CHUNK]),
                          phenotype_kwargs=kw, pose_parameterization='local-bone')
        verts.append(out['vertices'].detach().cpu().numpy())
        poses.append(out['bone_poses'].detach().cpu().numpy())
    return np.concatenate(verts), np.concatenate(poses)

  def _carried_offsets(self, subject: AnnySubject) -> np.ndarray:
    """(K, 3) each carried marker vertex in its bone's frame, at the rest posture (all
    deltas identity, where the landmarks were picked): carried points coincide with
    their skin vertices there. (anny's own 'rest_bone_poses' are not that posture: its
    bones sit up to ~25 deg from them, so offsets taken there would leave the points
    1-7 cm off the skin.) Cached per subject."""
    if subject not in self._carry_offsets:
      deltas = np.broadcast_to(np.eye(4), (1, len(self.bone_labels), 4, 4)).copy()
      verts, poses = self._posed(subject, deltas)
      vertex = np.array([v for v, _, _ in self._carried], np.int64)
      bone = np.array([b for _, _, b in self._carried], np.int64)
      frames = poses[0, bone]  # (K, 4, 4)
      self._carry_offsets[subject] = np.einsum(
          'kji,kj->ki', frames[:, :3, :3], verts[0, vertex] - frames[:, :3, 3])
    return self._carry_offsets[subject]

  def _forward(self, subject: AnnySubject, rotvecs: np.ndarray):
    """Native-frame vertices (T, V, 3), bone heads (T, B, 3) and the carried marker
    vertices (T, K, 3) (`_carried_offsets` moved with their bones), float64."""
    t, b, _ = rotvecs.shape
    mats = Rotation.from_rotvec(rotvecs.reshape(-1, 3)).as_matrix().reshape(t, b, 3, 3)
    deltas = np.zeros((t, b, 4, 4))
    deltas[..., :3, :3] = mats
    deltas[..., 3, 3] = 1.0
    verts, poses = self._posed(subject, deltas)
    carriers = poses[:, [b for _, _, b in self._carried]]  # (T, K, 4, 4)
    carried = carriers[..., :3, 3] + np.einsum('tkij,kj->tki', carriers[..., :3, :3],
                                               self._carried_offsets(subject))
    return verts, poses[..., :3, 3], carried

  # ---- rest geometry, calibration, retargeting ----------------------------------------------
  def rest_frames(self, subject: AnnySubject) -> base.BodyFrames:
    """The rest posture (one frame), root bone head at the world origin."""
    return self.pose(subject, AnnyPose.rest(1, len(self.bone_labels)))

  def rest_geometry(self, subject: AnnySubject | None = None) -> mk.RestGeometry:
    """World-frame rest mesh, rig joints and body-region skinning weights, as
    `markers.find_landmark_vertices` needs them (root at the origin)."""
    subject = subject or AnnySubject()
    verts, heads, _ = self._forward(subject, np.zeros((1, len(self.bone_labels), 3)))
    verts = verts[0] @ ANNY_NATIVE_TO_WORLD.T
    heads = heads[0] @ ANNY_NATIVE_TO_WORLD.T
    joints = {j: heads[b] for j, b in self._joint_bones.items()}
    w = self._model.vertex_bone_weights.detach().cpu().numpy()
    idx = self._model.vertex_bone_indices.detach().cpu().numpy()
    regions = {}
    for r in mk.REQUIRED_REGIONS:
      member = np.array([_bone_body(b) == r for b in self.bone_labels])
      regions[r] = (w * member[idx]).sum(axis=1)
    return mk.RestGeometry(verts, joints, regions)

  def calibration(self, subject: AnnySubject) -> rt.Calibration:
    """Retargeting calibration of `subject` (computed once per subject and cached on
    this instance): rest posture as project coordinates, rest offset root -> mid-ASIS,
    and the translation scale that keeps the feet on the floor."""
    if subject not in self._calibrations:
      self._calibrations[subject] = rt.calibrate(
          self, subject, AnnyPose.rest(1, len(self.bone_labels)))
    return self._calibrations[subject]

  def retarget(self, shape: AnnySubject, motion_coordinates, calibration=None
               ) -> tuple[AnnyPose, np.ndarray]:
    """Project coordinates (T, 39) (or a Motion with `.coordinates`) -> (AnnyPose,
    root_translation (T, 3) world) for `pose`. See `retarget.py` for the method."""
    cal = calibration or self.calibration(shape)
    local, roots = rt.retarget_rotations(self.rig, motion_coordinates, cal)
    rotvecs = Rotation.from_matrix(local.reshape(-1, 3, 3)).as_rotvec().reshape(
        local.shape[:2] + (3,))
    return AnnyPose(rotvecs), roots

  def pose_motion(self, shape: AnnySubject, motion_coordinates) -> base.BodyFrames:
    """retarget + pose."""
    poses, roots = self.retarget(shape, motion_coordinates)
    return self.pose(shape, poses, roots)


def compute_anny_marker_vertices(body: AnnyBody | None = None) -> dict[str, int]:
  """Re-runs the documented landmark search on the default phenotype (the procedure
  that produced `ANNY_MARKER_VERTICES`)."""
  body = body or AnnyBody()
  return mk.find_landmark_vertices(body.rest_geometry(AnnySubject()))


def check_marker_regions(body: AnnyBody, vertex_ids: Mapping[str, int] = ANNY_MARKER_VERTICES
                         ) -> dict[str, str]:
  """Body region (`_bone_body`) that dominates each marker vertex's skinning."""
  w = body.model.vertex_bone_weights.detach().cpu().numpy()
  idx = body.model.vertex_bone_indices.detach().cpu().numpy()
  out = {}
  for name, v in vertex_ids.items():
    share: dict[str, float] = {}
    for k in range(w.shape[1]):
      region = _bone_body(body.bone_labels[idx[v, k]])
      share[region] = share.get(region, 0.0) + float(w[v, k])
    out[name] = max(share, key=share.get)
  return out
