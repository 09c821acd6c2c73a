"""A procedural stand-in for SMPL-X model files, for tests only (never training data).

The real SMPL-X files are licensed (https://smpl-x.is.tue.mpg.de) and must not be
shipped, downloaded or committed. `write_standin_model` writes an `SMPLX_{GENDER}.npz`
with every key the `smplx` package (0.1.28) reads, in the real files' formats and
shapes, for a crude humanoid built from tubes and ellipsoids:

* T-pose in SMPL-X's native frame (y up, facing +z, x = the subject's left), ~1.79 m,
  pelvis joint at the origin, palms down, thumbs forward -- the real model's zero pose;
* the 55 SMPL-X joints (kinematic tree and order of the real model), each regressed
  (`J_regressor`) as the mean of a ring of vertices around it, so that joints follow
  the shape;
* every vertex skinned rigidly to the joint that moves its segment (`weights`);
* `shapedirs` (V, 3, 400): beta 0 scales the body about the origin (3 % per unit),
  beta 1 scales its width and depth (5 % per unit), the other 298 shape and the 100
  expression directions are zero; `posedirs` (V, 3, 486) are zero (no pose correctives);
* identity hand PCA components, zero hand means, 51 face landmarks on head faces.

With the default resolution V >= 9930, so `smplx.vertex_ids` (which indexes vertices up
to 9929 for its extra joints) needs no change. Smaller stand-ins (`resolution` < 1) can
be loaded inside `patched_smplx_vertex_ids(V)`, which patches the table only for the
duration of the `with` block.

The marker search (`markers.find_landmark_vertices`) runs on this geometry like on the
real template, so the SMPL-X backend's marker code path is exercised; the resulting
vertex ids are meaningful only for the stand-in.
"""

from __future__ import annotations

import contextlib
import math
import pathlib

import numpy as np
from scipy import optimize

NUM_JOINTS = 55
# SMPL-X kinematic tree (parent of each joint, -1 for the pelvis).
PARENTS = (-1, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 9, 9, 12, 13, 14, 16, 17, 18, 19, 15, 15,
           15, 20, 25, 26, 20, 28, 29, 20, 31, 32, 20, 34, 35, 20, 37, 38, 21, 40, 41, 21,
           43, 44, 21, 46, 47, 21, 49, 50, 21, 52, 53)
_FINGERS = ('index', 'middle', 'pinky', 'ring', 'thumb')  # SMPL-X hand joint order


def _joint_positions() -> np.ndarray:
  """(55, 3) joints of the stand-in, native SMPL-X frame (left side = +x)."""
  j = np.zeros((NUM_JOINTS, 3))

  def both(left_index, right_index, p):
    j[left_index] = p
    j[right_index] = (-p[0], p[1], p[2])

  j[0] = (0.0, 0.0, 0.0)
  both(1, 2, np.array([0.09, -0.08, 0.0]))      # hips
  both(4, 5, np.array([0.10, -0.50, 0.01]))     # knees
  both(7, 8, np.array([0.10, -0.90, -0.01]))    # ankles
  both(10, 11, np.array([0.11, -0.95, 0.12]))   # feet (toe bases)
  j[3] = (0.0, 0.10, -0.01)
  j[6] = (0.0, 0.23, 0.0)
  j[9] = (0.0, 0.36, 0.01)
  j[12] = (0.0, 0.52, -0.01)
  j[15] = (0.0, 0.62, 0.01)
  j[22] = (0.0, 0.60, 0.05)
  both(23, 24, np.array([0.03, 0.67, 0.08]))    # eyes
  both(13, 14, np.array([0.05, 0.45, 0.0]))     # collars
  both(16, 17, np.array([0.18, 0.46, -0.01]))   # shoulders
  both(18, 19, np.array([0.45, 0.46, -0.02]))   # elbows
  both(20, 21, np.array([0.70, 0.46, 0.0]))     # wrists
  wrist = np.array([0.70, 0.46, 0.0])
  bases = {'index': (0.09, 0.0, 0.03), 'middle': (0.095, 0.0, 0.01), 'pinky': (0.08, 0.0, -0.03),
           'ring': (0.09, 0.0, -0.01), 'thumb': (0.03, -0.01, 0.04)}
  for f, finger in enumerate(_FINGERS):
    base = wrist + np.array(bases[finger])
    step = np.array([0.02, -0.005, 0.02]) if finger == 'thumb' else np.array([0.03, 0.0, 0.0])
    for k in range(3):
      both(25 + 3 * f + k, 40 + 3 * f + k, base + k * step)
  return j


def _frame(axis):
  """Two unit vectors perpendicular to `axis` (u ~ 'width', w ~ 'depth')."""
  axis = axis / np.linalg.norm(axis)
  hint = np.array([0.0, 0.0, 1.0]) if abs(axis[2]) < 0.9 else np.array([0.0, 1.0, 0.0])
  u = np.cross(hint, axis)
  u /= np.linalg.norm(u)
  return u, np.cross(axis, u)


class _MeshBuilder:
  """Accumulates closed tubes (rings between two points, capped at both ends)."""

  def __init__(self, around: int):
    self.around = around
    self.vertices: list[np.ndarray] = []
    self.faces: list[np.ndarray] = []
    self.joint: list[np.ndarray] = []
    self.count = 0

  def tube(self, p0, p1, radii0, radii1, joint: int, along: int, profile=None, frame=None):
    """Elliptical tube from p0 to p1; radii (width, depth) at both ends; `profile(t)`
    multiplies the radii (e.g. an ellipsoid); `frame` = (u, w) cross-section axes."""
    p0, p1 = np.asarray(p0, float), np.asarray(p1, float)
    axis = p1 - p0
    u, w = frame if frame is not None else _frame(axis)
    n = self.around
    angles = np.linspace(0.0, 2 * math.pi, n, endpoint=False)
    verts = [p0]
    for i in range(along):
      t = (i + 0.5) / along
      scale = profile(t) if profile is not None else 1.0
      a = scale * ((1 - t) * radii0[0] + t * radii1[0])
      b = scale * ((1 - t) * radii0[1] + t * radii1[1])
      c = p0 + t * axis
      verts.extend(c + a * np.cos(angles)[:, None] * u + b * np.sin(angles)[:, None] * w)
    verts.append(p1)
    verts = np.asarray(verts)
    o = self.count
    faces = []
    for k in range(n):  # bottom cap
      faces.append((o, o + 1 + (k + 1) % n, o + 1 + k))
    for i in range(along - 1):
      r0, r1 = o + 1 + i * n, o + 1 + (i + 1) * n
      for k in range(n):
        k1 = (k + 1) % n
        faces.append((r0 + k, r0 + k1, r1 + k1))
        faces.append((r0 + k, r1 + k1, r1 + k))
    top, last = o + 1 + along * n, o + 1 + (along - 1) * n
    for k in range(n):  # top cap
      faces.append((last + k, last + (k + 1) % n, top))
    self.vertices.append(verts)
    self.faces.append(np.asarray(faces))
    self.joint.append(np.full(len(verts), joint))
    self.count += len(verts)

  def arrays(self):
    return (np.concatenate(self.vertices), np.concatenate(self.faces),
            np.concatenate(self.joint))


def _rounded_end(t):
  return min(1.0, math.sqrt(t / 0.25)) * 0.95 + 0.05


def _ellipsoid(t):
  return math.sqrt(max(1.0 - (2.0 * t - 1.0) ** 2, 0.0)) * 0.999 + 0.001


def build_standin_geometry(resolution: float = 1.0):
  """(v_template (V, 3), faces (F, 3), vertex joint (V,), joints (55, 3)) of the
  stand-in humanoid. `resolution` scales the number of rings and ring vertices."""
  around = max(8, round(24 * resolution))

  def n(length_m):  # rings for a segment of this length
    return max(3, round(length_m * 75 * resolution))

  j = _joint_positions()
  mb = _MeshBuilder(around)
  up = np.array([0.0, 1.0, 0.0])
  ex, ez = np.array([1.0, 0.0, 0.0]), np.array([0.0, 0.0, 1.0])
  # Trunk: pelvis, lumbar, thorax (width along x, depth along z).
  mb.tube((0, -0.14, 0), (0, 0.08, 0), (0.17, 0.11), (0.16, 0.10), 0, n(0.22), frame=(ex, ez))
  mb.tube((0, 0.08, 0), (0, 0.23, 0), (0.155, 0.10), (0.16, 0.105), 3, n(0.15), frame=(ex, ez))
  mb.tube((0, 0.23, 0), (0, 0.36, 0), (0.16, 0.105), (0.17, 0.11), 6, n(0.13), frame=(ex, ez))
  mb.tube((0, 0.36, 0), (0, 0.50, 0), (0.17, 0.11), (0.14, 0.09), 9, n(0.14), frame=(ex, ez))
  mb.tube((0, 0.49, -0.01), (0, 0.62, -0.005), (0.055, 0.055), (0.05, 0.05), 12, n(0.13),
          frame=(ex, ez))
  mb.tube((0, 0.565, 0.01), (0, 0.795, 0.01), (0.08, 0.10), (0.08, 0.10), 15, n(0.23),
          profile=_ellipsoid, frame=(ex, ez))
  for side, sgn in (('l', 1.0), ('r', -1.0)):
    def idx(left, right, side=side):
      return left if side == 'l' else right

    def m(p, sgn=sgn):
      p = np.asarray(p, float)
      return np.array([sgn * p[0], p[1], p[2]])

    hip, knee, ankle, foot = j[idx(1, 2)], j[idx(4, 5)], j[idx(7, 8)], j[idx(10, 11)]
    mb.tube(hip + 0.02 * up, knee, (0.08, 0.08), (0.055, 0.055), idx(1, 2), n(0.44))
    mb.tube(knee, ankle - 0.03 * up, (0.055, 0.055), (0.04, 0.04), idx(4, 5), n(0.43))
    heel = ankle + np.array([0.0, -0.05, -0.075])
    mb.tube(heel, foot + np.array([0.0, -0.015, 0.0]), (0.04, 0.035), (0.045, 0.022),
            idx(7, 8), n(0.22), profile=_rounded_end, frame=(ex, up))
    mb.tube(foot + np.array([0.0, -0.02, -0.005]), foot + np.array([0.0, -0.03, 0.07]),
            (0.045, 0.02), (0.035, 0.012), idx(10, 11), n(0.08), frame=(ex, up))
    shoulder = j[idx(16, 17)]
    mb.tube(m((0.0, 0.46, 0.0)), shoulder + m((0.02, 0.0, 0.0)), (0.05, 0.05), (0.055, 0.05),
            idx(13, 14), n(0.20))
    elbow, wrist = j[idx(18, 19)], j[idx(20, 21)]
    mb.tube(shoulder, elbow, (0.05, 0.05), (0.038, 0.038), idx(16, 17), n(0.27))
    mb.tube(elbow, wrist, (0.038, 0.038), (0.028, 0.024), idx(18, 19), n(0.25))
    mb.tube(wrist, wrist + m((0.095, 0.0, 0.0)), (0.02, 0.03), (0.018, 0.045),
            idx(20, 21), n(0.10), frame=(up, ez))
    for f, finger in enumerate(_FINGERS):
      first = idx(25, 40) + 3 * f
      pts = [j[first], j[first + 1], j[first + 2]]
      tip = pts[2] + (pts[2] - pts[1]) * 0.8
      for k in range(3):
        end = pts[k + 1] if k < 2 else tip
        mb.tube(pts[k], end, (0.009, 0.009), (0.008, 0.008), first + k, 3)
  v, f, joint_of_vertex = mb.arrays()
  return v, f, joint_of_vertex, j


def _j_regressor(v, joint_of_vertex, joints):
  """(55, V): each joint as a convex combination of nearby vertices of its own and its
  parent's segments (non-negative least squares with a sum-to-one row), exact on the
  template, so the regressed joints follow the shape blend shapes as in SMPL-X."""
  reg = np.zeros((NUM_JOINTS, len(v)))
  for k in range(NUM_JOINTS):
    cand = np.flatnonzero(np.isin(joint_of_vertex, [k, max(PARENTS[k], 0)]))
    cand = cand[np.argsort(np.linalg.norm(v[cand] - joints[k], axis=1))[:400]]
    a = np.vstack([v[cand].T, 10.0 * np.ones(len(cand))])
    w, _ = optimize.nnls(a, np.append(joints[k], 10.0))
    reg[k, cand] = w / w.sum()
  return reg


def write_standin_model(folder, gender: str = 'neutral', resolution: float = 1.0) -> pathlib.Path:
  """Writes `<folder>/SMPLX_<GENDER>.npz` (a procedural stand-in) and returns its path.

  Args:
    folder: directory (created if needed), e.g. `<tmp>/smplx`.
    gender: 'neutral', 'male' or 'female' (the stand-ins differ only by 2 % in size:
      female 0.98, male 1.02, so tests can tell them apart).
    resolution: mesh density; 1.0 gives V >= 9930 (see the module docstring).
  """
  gender = gender.lower()
  scale = {'neutral': 1.0, 'male': 1.02, 'female': 0.98}.get(gender)
  if scale is None:
    raise ValueError(f"gender must be 'neutral', 'male' or 'female', got {gender!r}")
  v, f, joint_of_vertex, joints = build_standin_geometry(resolution)
  v, joints = v * scale, joints * scale
  num_v = len(v)
  weights = np.zeros((num_v, NUM_JOINTS), dtype=np.float32)
  weights[np.arange(num_v), joint_of_vertex] = 1.0
  shapedirs = np.zeros((num_v, 3, 400), dtype=np.float32)
  shapedirs[:, :, 0] = 0.03 * v
  shapedirs[:, :, 1] = 0.05 * v * np.array([1.0, 0.0, 1.0])
  rng = np.random.default_rng(0)
  lmk_faces = rng.choice(np.flatnonzero(np.isin(joint_of_vertex[f[:, 0]], [15])), 51, replace=False)
  bary = rng.dirichlet(np.ones(3), size=51)
  dyn_faces = rng.choice(np.flatnonzero(np.isin(joint_of_vertex[f[:, 0]], [15])), (79, 17))
  dyn_bary = rng.dirichlet(np.ones(3), size=(79, 17))
  kintree = np.stack([np.array(PARENTS, dtype=np.int64), np.arange(NUM_JOINTS, dtype=np.int64)])
  kintree[0, 0] = 4294967295  # the real files store the root's parent as uint32 -1
  vt = np.stack([0.5 + 0.5 * np.arctan2(v[:, 0], v[:, 2]) / math.pi,
                 (v[:, 1] - v[:, 1].min()) / np.ptp(v[:, 1])], axis=1)
  data = {
      'v_template': v.astype(np.float64),
      'f': f.astype(np.int32),
      'shapedirs': shapedirs,
      'posedirs': np.zeros((num_v, 3, 486), dtype=np.float32),
      'J_regressor': _j_regressor(v, joint_of_vertex, joints).astype(np.float64),
      'kintree_table': kintree,
      'weights': weights,
      'hands_componentsl': np.eye(45, dtype=np.float64),
      'hands_componentsr': np.eye(45, dtype=np.float64),
      'hands_meanl': np.zeros(45), 'hands_meanr': np.zeros(45),
      'hands_coeffsl': np.zeros((1, 45)), 'hands_coeffsr': np.zeros((1, 45)),
      'lmk_faces_idx': lmk_faces.astype(np.int64),
      'lmk_bary_coords': bary.astype(np.float64),
      'dynamic_lmk_faces_idx': dyn_faces.astype(np.int64),
      'dynamic_lmk_bary_coords': dyn_bary.astype(np.float64),
      'vt': vt.astype(np.float64), 'ft': f.astype(np.int32),
  }
  folder = pathlib.Path(folder)
  folder.mkdir(parents=True, exist_ok=True)
  path = folder / f'SMPLX_{gender.upper()}.npz'
  np.savez_compressed(path, **data)
  return path


@contextlib.contextmanager
def patched_smplx_vertex_ids(num_vertices: int):
  """Within the block, `smplx.vertex_ids.vertex_ids['smplx']` (the extra-joint vertex
  table the SMPLX constructor reads) maps every entry into range(num_vertices); the
  table is restored on exit. Only needed to construct models from stand-ins with fewer
  than 9930 vertices (the extra joints are then meaningless)."""
  # Lazy: smplx + torch, 1.1 s: writing stand-ins needs neither.
  from smplx import vertex_ids  # pylint: disable=g-import-not-at-top
  table = vertex_ids.vertex_ids['smplx']
  saved = dict(table)
  try:
    for k in table:
      table[k] = int(table[k]) % num_vertices
    yield
  finally:
    table.clear()
    table.update(saved)
