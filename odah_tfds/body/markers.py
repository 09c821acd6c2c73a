"""Virtual markers on body meshes: definitions, evaluation, and the landmark search.

Every marker of the project model (`Skeleton.marker_names`, 63) gets one definition:

* `VertexMarker(v)`: mesh vertex v (bony landmarks on the skin: ASIS, epicondyles,
  malleoli, heel, ...). Vertices lie on the surface by construction and follow the
  skin through skinning.
* `SurfaceMarker(face, barycentric)`: a point on a triangle (available for
  hand-made definitions; the search below only returns vertices).
* `BoneVertexMarker(v, segment)`: mesh vertex v carried rigidly by the rig bone of a
  project body (`segment`, e.g. 'humerus_r'): its rest-pose position moved with that
  bone, as if v were skinned to it alone. Used for the bony landmarks (`carry='bony'`):
  a bone under the skin is rigid, while linear-blend skinning moves the skin over a
  joint partly with the next segment (anny's elbow skin is skinned to the forearm 2 cm
  above the joint, so its "epicondyles" turned with the forearm).
* `JointMarker(joint)`: a joint of the backend's rig (its posed position), used for
  the shoulder joint centre (glenohumeral centre = the rig's shoulder joint).
* `MidpointMarker(a, b)`: midpoint of two other markers (ISB, Wu et al. 2005 /
  Wu et al. 2002): knee JC = femoral epicondyles, ankle JC = malleoli, elbow JC =
  humeral epicondyles, wrist JC = radial/ulnar styloids.
* `BellHipMarker(side)`: hip JC from the four pelvis landmarks with the regression of
  Bell, Pedersen & Brand (1990) -- the same regression and fractions the project model
  uses (`fullbody_table.BELL_HJC_FRACTIONS`), so the mesh and the model agree by
  construction.

`find_landmark_vertices` is the documented geometric procedure that picks the vertex
of every surface landmark on a rest mesh (given in the world frame, standing, facing
+x). Each right-side landmark is "the extreme vertex of a body region in a direction,
among the vertices within a radius of a line through a point" (an approximate ray cast
into the body from outside); the point and direction are derived from the rig's joint
centres and from the project model's landmark geometry (`fullbody_table.py`), scaled
by stature / 1.75 m. Left-side landmarks are the mirror images (z -> -z) snapped to
the nearest left-region vertex, so the pairs are symmetric. The anny backend ran this
once and froze the indices (`anny_body.ANNY_MARKER_VERTICES`); the SMPL-X backend runs
it on the loaded model's template (see its README section).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping

import numpy as np

from banet_jax.skeleton.models import fullbody_table as _table

# Project model reference stature (m) that the landmark offsets below are written for.
REFERENCE_STATURE = _table.STATURE
# Bell et al. 1990 hip-joint-centre fractions of the inter-ASIS distance (posterior,
# inferior, lateral) in the pelvis frame -- the project model's own values.
BELL_HJC_FRACTIONS = _table.BELL_HJC_FRACTIONS


@dataclasses.dataclass(frozen=True)
class VertexMarker:
  vertex: int


@dataclasses.dataclass(frozen=True)
class SurfaceMarker:
  face: int
  barycentric: tuple[float, float, float]


@dataclasses.dataclass(frozen=True)
class BoneVertexMarker:
  vertex: int
  segment: str  # a project body with its side, e.g. 'humerus_r' (see BONY_SEGMENTS)


@dataclasses.dataclass(frozen=True)
class JointMarker:
  joint: str


@dataclasses.dataclass(frozen=True)
class MidpointMarker:
  a: str
  b: str


@dataclasses.dataclass(frozen=True)
class BellHipMarker:
  side: str  # 'r' or 'l'


MarkerDefinition = (VertexMarker | SurfaceMarker | BoneVertexMarker | JointMarker
                    | MidpointMarker | BellHipMarker)

# Joint-centre markers and how they are derived (see the module docstring).
JOINT_CENTRE_RULES = {
    'KJC': ('LFC', 'MFC'),
    'AJC': ('LMAL', 'MMAL'),
    'EJC': ('LEL', 'MEL'),
    'WJC': ('WRA', 'WRB'),
}
# The same joint centres as rig joints (`joint_centres='rig'`): '<joint>_r' / '_l'.
RIG_JOINT_CENTRES = {'KJC': 'knee', 'AJC': 'ankle', 'EJC': 'elbow', 'WJC': 'wrist'}

# Surface landmarks, per side ('R'/'L' prefix) and on the midline.
SIDE_LANDMARKS = ('ASI', 'PSI', 'GTR', 'LFC', 'MFC', 'LMAL', 'MMAL', 'CAL', 'TOE', 'MT1',
                  'MT5', 'HLX', 'ACR', 'LEL', 'MEL', 'WRB', 'WRA', 'MCP2', 'MCP5', 'FHD',
                  'BHD', 'HEAD')
MIDLINE_LANDMARKS = ('C7', 'CLAV', 'STRN', 'T10', 'FHEAD', 'BHEAD', 'HEAD_TOP')
SURFACE_LANDMARKS = tuple(p + n for p in ('R', 'L') for n in SIDE_LANDMARKS) + MIDLINE_LANDMARKS
# The bony landmarks (IK class 'bony' in `odah_tfds.alignment.marker_setup`) and the
# project body whose rig bone carries each (`carry='bony'`); bodies of one side get
# '_r' / '_l'. That is the body the project model puts the marker on, except the ulnar
# styloid (WRB, on the model's ulna): a rig's forearm twist bone (anny's lowerarm02,
# driven by the radius) or single forearm bone (SMPL-X) turns the whole distal forearm,
# ulnar side included, and the IK recovers pro/supination best from it (measured on
# anny: 90 deg came back as 85.5 with WRB on the radius, 78.4 on the ulna).
BONY_SEGMENTS = {
    'ASI': 'pelvis', 'PSI': 'pelvis', 'LFC': 'femur', 'MFC': 'femur', 'LMAL': 'tibia',
    'MMAL': 'tibia', 'CAL': 'foot', 'TOE': 'foot', 'MT1': 'foot', 'MT5': 'foot',
    'LEL': 'humerus', 'MEL': 'humerus', 'WRA': 'radius', 'WRB': 'radius', 'MCP2': 'hand',
    'MCP5': 'hand', 'C7': 'torso', 'CLAV': 'torso', 'STRN': 'torso', 'T10': 'torso',
}
MIDLINE_SEGMENTS = ('pelvis', 'torso')


def marker_definitions(vertex_ids: Mapping[str, int], shoulder_joints=('shoulder_r', 'shoulder_l'),
                       hip: str = 'bell', joint_centres: str = 'landmarks',
                       carry: str = 'none') -> dict[str, MarkerDefinition]:
  """Definitions of the 63 project markers from surface-landmark vertex ids.

  Args:
    vertex_ids: vertex index of every name in `SURFACE_LANDMARKS`.
    shoulder_joints: rig joint names (right, left) used for RSJC / LSJC.
    hip: 'bell' (Bell 1990 regression from RASI/LASI/RPSI/LPSI) or a pair of rig
      joint names via `hip=('hip_r', 'hip_l')`-style tuple.
    joint_centres: 'landmarks' (KJC, AJC, EJC, WJC = midpoints of the landmark pairs,
      ISB) or 'rig' (the rig's knee, ankle, elbow and wrist joints, `JointMarker`s
      named '<joint>_r' / '<joint>_l'): the points a skinned mesh really rotates
      about. Landmark vertices near a joint follow the skin's blend of the two
      segments, so their midpoint drifts off the rotation centre as the joint bends
      (anny: ~1-2 cm at the elbow between the rest A-pose and straight arms).
    carry: 'none' (every surface landmark is its vertex) or 'bony' (the
      `BONY_SEGMENTS` landmarks are `BoneVertexMarker`s on their body's rig bone,
      segment names '<body>' or '<body>_r' / '_l').

  Returns:
    name -> definition, for every project marker.
  """
  missing = [n for n in SURFACE_LANDMARKS if n not in vertex_ids]
  if missing:
    raise ValueError(f'vertex_ids lacks the surface landmarks {missing}')
  if carry not in ('none', 'bony'):
    raise ValueError(f"carry must be 'none' or 'bony', got {carry!r}")
  defs: dict[str, MarkerDefinition] = {n: VertexMarker(int(vertex_ids[n]))
                                       for n in SURFACE_LANDMARKS}
  if carry == 'bony':
    for n in SURFACE_LANDMARKS:
      sided = n[0] in 'RL' and n[1:] in BONY_SEGMENTS and n not in MIDLINE_LANDMARKS
      key = n[1:] if sided else n
      if key in BONY_SEGMENTS:
        body = BONY_SEGMENTS[key]
        segment = body + (f'_{n[0].lower()}' if sided and body not in MIDLINE_SEGMENTS else '')
        defs[n] = BoneVertexMarker(int(vertex_ids[n]), segment)
  if joint_centres not in ('landmarks', 'rig'):
    raise ValueError(f"joint_centres must be 'landmarks' or 'rig', got {joint_centres!r}")
  for i, side in enumerate(('R', 'L')):
    for jc, (a, b) in JOINT_CENTRE_RULES.items():
      if joint_centres == 'rig':
        defs[side + jc] = JointMarker(f'{RIG_JOINT_CENTRES[jc]}_{side.lower()}')
      else:
        defs[side + jc] = MidpointMarker(side + a, side + b)
    defs[side + 'SJC'] = JointMarker(shoulder_joints[i])
    if hip == 'bell':
      defs[side + 'HJC'] = BellHipMarker(side.lower())
    else:
      defs[side + 'HJC'] = JointMarker(hip[i])
  return defs


def bell_hip_centres(rasi, lasi, rpsi, lpsi):
  """Hip joint centres (right, left) from the pelvis landmarks, Bell et al. 1990.

  Pelvis frame (as the project model's pelvis body): origin at the ASIS midpoint,
  z = LASI -> RASI, x anterior (from the PSIS midpoint, made orthogonal to z),
  y = z x x (superior). HJC = origin + d * (-0.19 x - 0.30 y +/- 0.36 z), d = the
  inter-ASIS distance. Inputs (..., 3); outputs two (..., 3) arrays.
  """
  rasi, lasi, rpsi, lpsi = (np.asarray(a, dtype=np.float64) for a in (rasi, lasi, rpsi, lpsi))
  origin = 0.5 * (rasi + lasi)
  across = rasi - lasi
  d = np.linalg.norm(across, axis=-1, keepdims=True)
  z = across / d
  back = origin - 0.5 * (rpsi + lpsi)
  x = back - np.sum(back * z, axis=-1, keepdims=True) * z
  x = x / np.linalg.norm(x, axis=-1, keepdims=True)
  y = np.cross(z, x)
  fx, fy, fz = BELL_HJC_FRACTIONS
  common = origin + d * (fx * x + fy * y)
  return common + d * fz * z, common - d * fz * z


def carried_vertices(definitions: Mapping[str, MarkerDefinition]) -> set[tuple[int, str]]:
  """The (vertex, segment) pairs of the `BoneVertexMarker`s, which a backend computes."""
  return {(d.vertex, d.segment) for d in definitions.values() if isinstance(d, BoneVertexMarker)}


def evaluate_markers(definitions: Mapping[str, MarkerDefinition], names, vertices,
                     joints: Mapping[str, np.ndarray] | None = None,
                     faces: np.ndarray | None = None,
                     carried: Mapping[tuple[int, str], np.ndarray] | None = None) -> np.ndarray:
  """Marker positions from posed vertices and rig joints.

  Args:
    definitions: name -> definition (see `marker_definitions`).
    names: the output order (e.g. the project's 63 marker names).
    vertices: (T, V, 3) posed vertices.
    joints: rig joint name -> (T, 3) posed position (for `JointMarker`s).
    faces: (F, 3) triangles (for `SurfaceMarker`s).
    carried: (vertex, segment) -> (T, 3) posed position of the rest vertex carried by
      the segment's bone (for `BoneVertexMarker`s; see `carried_vertices`).

  Returns:
    (T, len(names), 3) in the frame and dtype (float64) of `vertices`.
  """
  vertices = np.asarray(vertices, dtype=np.float64)
  cache: dict[str, np.ndarray] = {}

  def get(name: str, stack=()) -> np.ndarray:
    if name in cache:
      return cache[name]
    if name in stack:
      raise ValueError(f'marker definitions are circular at {name!r}')
    if name not in definitions:
      raise KeyError(f'no definition for marker {name!r}')
    d = definitions[name]
    stack = stack + (name,)
    if isinstance(d, VertexMarker):
      p = vertices[:, d.vertex]
    elif isinstance(d, SurfaceMarker):
      if faces is None:
        raise ValueError(f'marker {name!r} is a SurfaceMarker but no faces were given')
      tri = vertices[:, np.asarray(faces)[d.face]]  # (T, 3, 3)
      p = np.einsum('k,tkd->td', np.asarray(d.barycentric, dtype=np.float64), tri)
    elif isinstance(d, BoneVertexMarker):
      key = (d.vertex, d.segment)
      if carried is None or key not in carried:
        raise KeyError(f'marker {name!r} needs vertex {d.vertex} carried by {d.segment!r}, '
                       'which was not given')
      p = np.asarray(carried[key], dtype=np.float64)
    elif isinstance(d, JointMarker):
      if joints is None or d.joint not in joints:
        raise KeyError(f'marker {name!r} needs rig joint {d.joint!r}, which was not given')
      p = np.asarray(joints[d.joint], dtype=np.float64)
    elif isinstance(d, MidpointMarker):
      p = 0.5 * (get(d.a, stack) + get(d.b, stack))
    elif isinstance(d, BellHipMarker):
      r, l = bell_hip_centres(get('RASI', stack), get('LASI', stack), get('RPSI', stack),
                              get('LPSI', stack))
      p = r if d.side == 'r' else l
    else:
      raise TypeError(f'unknown marker definition {d!r} for {name!r}')
    cache[name] = p
    return p

  return np.stack([get(n) for n in names], axis=1)


# =============================================================================
# The landmark search
# =============================================================================

# Rig joints (world positions in the rest posture) the search needs.
REQUIRED_JOINTS = tuple(f'{j}_{s}' for s in ('r', 'l') for j in (
    'hip', 'knee', 'ankle', 'shoulder', 'elbow', 'wrist', 'index_mcp', 'pinky_mcp', 'collar'))
# Body regions the search needs, named after the project model's bodies ('head' is
# the part of the torso above the neck, 'foot' the calcn, 'forearm' the ulna and
# radius). A region is a (V,) weight: the summed skinning weight of the rig bones that
# follow that body in the retargeting. A landmark is searched among the vertices with
# at least MIN_SEGMENT_WEIGHT of its body, so that it moves with its own segment and
# not half with the next one (linear-blend skinning mixes bones around joints).
REQUIRED_REGIONS = ('pelvis', 'torso', 'head') + tuple(
    f'{r}_{s}' for s in ('r', 'l') for r in ('femur', 'tibia', 'foot', 'toes', 'humerus',
                                             'forearm', 'hand'))
MIN_SEGMENT_WEIGHT = 0.6
# Landmarks over regions that every rig blends (the trochanter between pelvis and
# thigh, the acromion between trunk and arm) accept a lower share.
MIN_SEGMENT_WEIGHT_EXCEPTIONS = {'GTR': 0.5, 'ACR': 0.5}


@dataclasses.dataclass(frozen=True, eq=False)
class RestGeometry:
  """A rest mesh in the world frame (standing on y = 0 or anywhere, facing +x).

  Attributes:
    vertices: (V, 3) float64.
    joints: `REQUIRED_JOINTS` -> (3,) rig joint positions.
    regions: `REQUIRED_REGIONS` -> (V,) skinning weight of that body, in [0, 1].
  """

  vertices: np.ndarray
  joints: Mapping[str, np.ndarray]
  regions: Mapping[str, np.ndarray]

  def __post_init__(self):
    v = np.asarray(self.vertices)
    if v.ndim != 2 or v.shape[1] != 3:
      raise ValueError(f'vertices must be (V, 3), got {v.shape}')
    missing = [j for j in REQUIRED_JOINTS if j not in self.joints]
    if missing:
      raise ValueError(f'RestGeometry lacks the rig joints {missing}')
    missing = [r for r in REQUIRED_REGIONS if r not in self.regions]
    if missing:
      raise ValueError(f'RestGeometry lacks the regions {missing}')
    for r in REQUIRED_REGIONS:
      if np.asarray(self.regions[r]).shape != (v.shape[0],):
        raise ValueError(f'region {r!r} must be a ({v.shape[0]},) weight array')


def _unit(v) -> np.ndarray:
  v = np.asarray(v, dtype=np.float64)
  n = np.linalg.norm(v)
  if n < 1e-12:
    raise ValueError('zero-length direction in the landmark search')
  return v / n


def _perpendicular(v, axis) -> np.ndarray:
  """Unit component of v perpendicular to the unit `axis`."""
  return _unit(v - np.dot(v, axis) * axis)


def extreme_vertex(vertices, mask, origin, direction, radius: float, name: str = '?') -> int:
  """Index of the vertex furthest along `direction` near the line (origin, direction).

  Only vertices of `mask` within `radius` of the line and on the `direction` side of
  `origin` count: this approximates casting a ray from outside the body, against
  `direction`, towards `origin`, and keeping the first vertex it meets.
  """
  v = np.asarray(vertices, dtype=np.float64)
  d = _unit(direction)
  rel = v - np.asarray(origin, dtype=np.float64)
  along = rel @ d
  dist = np.linalg.norm(rel - along[:, None] * d, axis=1)
  ok = np.asarray(mask, dtype=bool) & (dist < radius) & (along > 0.0)
  if not np.any(ok):
    raise ValueError(f'landmark search for {name}: no vertex of its region within '
                     f'{radius:.3f} m of the search line through {np.round(origin, 3)} '
                     f'along {np.round(d, 3)}')
  idx = np.flatnonzero(ok)
  return int(idx[np.argmax(along[idx])])


def _mirror_vertex(vertices, mask, index: int) -> int:
  """Vertex of `mask` nearest to the mirror image (z -> -z) of vertex `index`."""
  v = np.asarray(vertices, dtype=np.float64)
  target = v[index] * np.array([1.0, 1.0, -1.0])
  idx = np.flatnonzero(mask)
  return int(idx[np.argmin(np.linalg.norm(v[idx] - target, axis=1))])


def _ankle_axis_r(shank_axis_down) -> np.ndarray:
  """Lateral malleolus direction for the right leg: the project model's ankle axis
  (lateral end 8 deg down and 6 deg back, Inman 1976) taken perpendicular to the
  shank."""
  lateral = _perpendicular(np.array([0.0, 0.0, 1.0]), shank_axis_down)
  fa, ta = math.radians(_table.ANKLE_AXIS_FRONTAL_DEG), math.radians(
      _table.ANKLE_AXIS_TRANSVERSE_DEG)
  a = math.cos(ta) * math.cos(fa) * lateral + math.sin(fa) * shank_axis_down + \
      -math.sin(ta) * math.cos(fa) * np.array([1.0, 0.0, 0.0])
  return _unit(a)


# The styloids are searched this far (metres at 1.75 m stature) proximal of the rig's
# wrist joint: they lie about 1 cm proximal of the radiocarpal joint line.
STYLOID_SETBACK = 0.01
# The greater trochanter is searched this far below the rig's hip joint (the model
# places it 1 cm below the HJC; 2 cm reaches thigh-skinned skin on anny).
TROCHANTER_DROP = 0.02


def find_landmark_vertices(geom: RestGeometry) -> dict[str, int]:
  """Vertex index of every surface landmark (`SURFACE_LANDMARKS`) on a rest mesh.

  The rules (right side; s = stature / 1.75 m with stature = the rest mesh's height;
  "extreme(region, point, dir, r)" = `extreme_vertex`; constants quoted from
  `fullbody_table.py`). Landmarks away from joint axes search only the vertices skinned
  mostly (>= `MIN_SEGMENT_WEIGHT`) to their own model body, so that they move with it.
  Landmarks on a joint's flexion axis (epicondyles, malleoli, styloids) search the two
  adjacent segments together, at the rig joint's level: a point on the axis hardly
  moves when the joint flexes, whichever of the two segments' bones skins it, and
  their midpoint then falls on the rig's centre of rotation.

  * RASI: extreme(pelvis, (x_hip, y_hip + 0.30 d, d / 2), +x, 1.5 cm s) with
    d = z_hip / 0.36: in the model (Bell regression) the HJC lies 0.36 d lateral of the
    midline and 0.30 d below the ASIS, which lies d / 2 lateral; so the ray runs forward
    at the ASIS height and lateral offset implied by the rig's hip joint.
  * RPSI: extreme(pelvis, (x_hip, y_ASIS-line, 4.5 cm s), -x): the sacral dimple
    (`INTER_PSIS_DISTANCE` 0.09 m).
  * RGTR: extreme(femur, hip joint - 2 cm s down, +z lateral).
  * RLFC / RMFC: extreme(femur+tibia, knee joint, +/- lateral), lateral = +z made
    perpendicular to the thigh axis.
  * RLMAL / RMMAL: extreme(tibia+foot, ankle joint, +/- the model's ankle axis
    (lateral end 8 deg down, 6 deg back, Inman 1976) made perpendicular to the shank).
  * Foot (floor = the foot region's lowest point; heel-to-toe length L along x):
    RCAL: extreme(foot, (x_ankle, floor + 3 cm s, z_ankle), -x); metatarsal heads at
    x_MT = heel + 0.73 L (`BALL_OF_FOOT_FRACTION`); RTOE: extreme(foot, (x_MT, ., z_c -
    5 mm s), +y), the dorsum (z_c = middle of the foot's width at x_MT); RMT1:
    extreme(foot, (x_MT, floor + 2 cm s, .), -z medial); RMT5: extreme(foot, (x_MT -
    3.5 cm s (`MT5_SETBACK`), floor + 2 cm s, .), +z); RHLX: extreme(toes, (., floor +
    1.5 cm s, z_c - 2 cm s), +x).
  * RACR: extreme(torso, (x_shoulder, ., z_shoulder), +y): top of the shoulder girdle
    above the glenohumeral joint (torso-skinned vertices only, so it does not ride on
    the arm).
  * RLEL / RMEL: extreme(humerus+forearm, elbow joint, +/- elbow axis);
    the axis is the normal of the arm's flexion plane (upper arm x forearm) when the
    elbow is bent more than 15 deg, else (upper arm x anterior) -- the frontal-plane
    normal of an unrotated arm --, pointing laterally.
  * RWRA / RWRB: extreme(forearm+hand, wrist joint - 1 cm s along the forearm, +/- radial),
    radial = index MCP - little-finger MCP made perpendicular to the forearm.
  * RMCP2 / RMCP5: extreme(hand, index / little-finger MCP joint, dorsal), dorsal =
    distal x radial (right hand).
  * Head (head region): HEAD_TOP = its highest vertex; head band at y = top - 9 cm s
    (`HEAD_BAND_DROP`), centre = middle of the head's x extent there; FHEAD (0 deg),
    RFHD (35 deg), RHEAD (90 deg), RBHD (145 deg), BHEAD (180 deg): extreme from the
    centre along (cos a, 0, sin a), the model's head-band angles.
  * Trunk midline (torso region, within 1 cm s of the line): CLAV = extreme(+x) at the
    clavicles' medial-end height (mean of the rig's collar joints); C7 = extreme(-x)
    7.1 cm s higher (de Leva CERV - SUPR); STRN = extreme(+x) 17.1 cm s lower (de Leva
    SUPR - XYPH); T10 = extreme(-x) at the STRN height.

  Returns:
    name -> vertex index for all of `SURFACE_LANDMARKS`.
  """
  v = np.asarray(geom.vertices, dtype=np.float64)
  j = {k: np.asarray(p, dtype=np.float64) for k, p in geom.joints.items()}
  weights = {k: np.asarray(w, dtype=np.float64) for k, w in geom.regions.items()}
  reg = {k: w >= MIN_SEGMENT_WEIGHT for k, w in weights.items()}
  for k, w in weights.items():
    for landmark, threshold in MIN_SEGMENT_WEIGHT_EXCEPTIONS.items():
      reg[f'{k}@{landmark}'] = w >= threshold
  for s_ in ('r', 'l'):  # joint-axis landmarks: the two adjacent segments together
    for a, b in (('femur', 'tibia'), ('tibia', 'foot'), ('humerus', 'forearm'),
                 ('forearm', 'hand')):
      reg[f'{a}+{b}_{s_}'] = weights[f'{a}_{s_}'] + weights[f'{b}_{s_}'] >= MIN_SEGMENT_WEIGHT
  stature = float(v[:, 1].max() - v[:, 1].min())
  s = stature / REFERENCE_STATURE
  ex, ey, ez = np.eye(3)
  out: dict[str, int] = {}

  # ---- pelvis -------------------------------------------------------------------
  hip = j['hip_r']
  _, fy, fz = BELL_HJC_FRACTIONS
  d_est = abs(hip[2]) / fz
  asis_y = hip[1] - fy * d_est
  out['RASI'] = extreme_vertex(v, reg['pelvis'], (hip[0], asis_y, 0.5 * d_est), ex,
                               0.015 * s, 'RASI')
  out['RPSI'] = extreme_vertex(v, reg['pelvis'],
                               (hip[0], asis_y, 0.5 * _table.INTER_PSIS_DISTANCE * s), -ex,
                               0.015 * s, 'RPSI')
  out['RGTR'] = extreme_vertex(v, reg['femur_r@GTR'], hip - TROCHANTER_DROP * s * ey, ez,
                               0.02 * s, 'RGTR')

  # ---- knee and ankle ---------------------------------------------------------------
  knee, ankle = j['knee_r'], j['ankle_r']
  thigh_down = _unit(knee - hip)
  lateral_knee = _perpendicular(ez, thigh_down)
  out['RLFC'] = extreme_vertex(v, reg['femur+tibia_r'], knee, lateral_knee, 0.015 * s, 'RLFC')
  out['RMFC'] = extreme_vertex(v, reg['femur+tibia_r'], knee, -lateral_knee, 0.015 * s, 'RMFC')
  shank_down = _unit(ankle - knee)
  mal_axis = _ankle_axis_r(shank_down)
  out['RLMAL'] = extreme_vertex(v, reg['tibia+foot_r'], ankle, mal_axis, 0.012 * s, 'RLMAL')
  out['RMMAL'] = extreme_vertex(v, reg['tibia+foot_r'], ankle, -mal_axis, 0.012 * s, 'RMMAL')

  # ---- foot ---------------------------------------------------------------------------
  foot, toes = reg['foot_r'], reg['toes_r']
  fv = v[foot | toes]
  floor = fv[:, 1].min()
  out['RCAL'] = extreme_vertex(v, foot, (ankle[0], floor + 0.03 * s, ankle[2]), -ex,
                               0.012 * s, 'RCAL')
  heel_x = v[out['RCAL'], 0]
  toe_tip_x = fv[:, 0].max()
  x_mt = heel_x + _table.BALL_OF_FOOT_FRACTION * (toe_tip_x - heel_x)
  near = np.abs(fv[:, 0] - x_mt) < 0.01 * s
  z_c = 0.5 * (fv[near, 2].min() + fv[near, 2].max())
  out['RTOE'] = extreme_vertex(v, foot, (x_mt, floor, z_c - 0.005 * s), ey, 0.01 * s, 'RTOE')
  out['RMT1'] = extreme_vertex(v, foot, (x_mt, floor + 0.02 * s, z_c), -ez, 0.01 * s, 'RMT1')
  out['RMT5'] = extreme_vertex(v, foot, (x_mt - _table.MT5_SETBACK * s, floor + 0.02 * s, z_c),
                               ez, 0.01 * s, 'RMT5')
  out['RHLX'] = extreme_vertex(v, toes, (x_mt, floor + 0.015 * s, z_c - 0.02 * s), ex,
                               0.01 * s, 'RHLX')

  # ---- arm ------------------------------------------------------------------------------
  shoulder, elbow, wrist = j['shoulder_r'], j['elbow_r'], j['wrist_r']
  out['RACR'] = extreme_vertex(v, reg['torso@ACR'], shoulder, ey, 0.02 * s, 'RACR')
  upper = _unit(elbow - shoulder)
  fore = _unit(wrist - elbow)
  flex_normal = np.cross(upper, fore)
  if np.linalg.norm(flex_normal) > math.sin(math.radians(15.0)):
    elbow_axis = _unit(flex_normal)
  else:
    elbow_axis = _unit(np.cross(upper, ex))
  # Point laterally: as the arm's frontal-plane normal upper x ex does for the right arm
  # (+z with the arm down, +y with it horizontal, the T-pose). Not by the sign of the
  # axis's z: with the arm horizontal that is ~0 and float noise of the mesh decided it
  # (the SMPL-X stand-in's epicondyles swapped on an AVX2 CPU).
  if np.dot(elbow_axis, np.cross(upper, ex)) < 0:
    elbow_axis = -elbow_axis
  out['RLEL'] = extreme_vertex(v, reg['humerus+forearm_r'], elbow, elbow_axis, 0.015 * s,
                               'RLEL')
  out['RMEL'] = extreme_vertex(v, reg['humerus+forearm_r'], elbow, -elbow_axis, 0.015 * s,
                               'RMEL')
  index, pinky = j['index_mcp_r'], j['pinky_mcp_r']
  radial = _perpendicular(index - pinky, fore)
  styloids = wrist - STYLOID_SETBACK * s * fore
  out['RWRA'] = extreme_vertex(v, reg['forearm+hand_r'], styloids, radial, 0.012 * s, 'RWRA')
  out['RWRB'] = extreme_vertex(v, reg['forearm+hand_r'], styloids, -radial, 0.012 * s, 'RWRB')
  distal = _unit(0.5 * (index + pinky) - wrist)
  radial_h = _perpendicular(index - pinky, distal)
  dorsal = _unit(np.cross(distal, radial_h))
  out['RMCP2'] = extreme_vertex(v, reg['hand_r'], index, dorsal, 0.01 * s, 'RMCP2')
  out['RMCP5'] = extreme_vertex(v, reg['hand_r'], pinky, dorsal, 0.01 * s, 'RMCP5')

  # ---- head -------------------------------------------------------------------------------
  head = reg['head']
  hv = v[head]
  top = int(np.flatnonzero(head)[np.argmax(hv[:, 1])])
  out['HEAD_TOP'] = top
  band_y = v[top, 1] - _table.HEAD_BAND_DROP * s
  at_band = np.abs(hv[:, 1] - band_y) < 0.01 * s
  centre = np.array([0.5 * (hv[at_band, 0].min() + hv[at_band, 0].max()), band_y, 0.0])
  for name, angle in (('FHEAD', 0.0), ('RFHD', 35.0), ('RHEAD', 90.0), ('RBHD', 145.0),
                      ('BHEAD', 180.0)):
    a = math.radians(angle)
    out[name] = extreme_vertex(v, head, centre, (math.cos(a), 0.0, math.sin(a)), 0.012 * s,
                               name)

  # ---- trunk midline ---------------------------------------------------------------------
  torso = reg['torso']
  clav_y = 0.5 * (j['collar_r'][1] + j['collar_l'][1])
  clav_x = 0.5 * (j['collar_r'][0] + j['collar_l'][0])
  c7_rise = (_table.DE_LEVA_CERV_MIDH_MM - _table.DE_LEVA_SUPR_MIDH_MM) / 1000.0 * \
      _table.LENGTH_SCALE * s
  upper_trunk = _table.L_UPPER_TRUNK * s
  r_mid = 0.01 * s
  out['CLAV'] = extreme_vertex(v, torso, (clav_x, clav_y, 0.0), ex, r_mid, 'CLAV')
  out['C7'] = extreme_vertex(v, torso, (clav_x, clav_y + c7_rise, 0.0), -ex, r_mid, 'C7')
  out['STRN'] = extreme_vertex(v, torso, (clav_x, clav_y - upper_trunk, 0.0), ex, r_mid,
                               'STRN')
  out['T10'] = extreme_vertex(v, torso, (clav_x, clav_y - upper_trunk, 0.0), -ex, r_mid, 'T10')

  # ---- left side: mirror images of the right-side vertices --------------------------------
  left_region = {
      'ASI': 'pelvis', 'PSI': 'pelvis', 'GTR': 'femur_l@GTR', 'LFC': 'femur+tibia_l',
      'MFC': 'femur+tibia_l', 'LMAL': 'tibia+foot_l', 'MMAL': 'tibia+foot_l', 'CAL': 'foot_l', 'TOE': 'foot_l', 'MT1': 'foot_l',
      'MT5': 'foot_l', 'HLX': 'toes_l', 'ACR': 'torso@ACR', 'LEL': 'humerus+forearm_l',
      'MEL': 'humerus+forearm_l', 'WRB': 'forearm+hand_l', 'WRA': 'forearm+hand_l', 'MCP2': 'hand_l', 'MCP5': 'hand_l',
      'FHD': 'head', 'BHD': 'head', 'HEAD': 'head',
  }
  for n in SIDE_LANDMARKS:
    out['L' + n] = _mirror_vertex(v, reg[left_region[n]], out['R' + n])
  return {n: out[n] for n in SURFACE_LANDMARKS}
