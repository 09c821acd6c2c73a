"""Retargeting of project-model motions (T x 39 coordinates) onto a body rig.

Used by every body backend (anny, SMPL-X). The project model's body orientations come
from `banet_jax.skeleton.forward_kinematics`; each rig bone then takes the orientation
change of the OpenSim body it is mapped to.

Conventions
-----------
* Frames. All rotations here are in the ODAH world frame (= the OpenSim ground frame:
  x anterior, y up, z right, metres). A rotation matrix R of a body or bone maps its
  local axes to world axes (v_world = R @ v_local), as `FKResult.body_rotations`.
  Backends convert from their native axes with a constant rotation N
  (`NATIVE_TO_WORLD`, p_world = N @ p_native); a bone's world rest orientation is
  G0 = N @ (its native rest orientation).
* Rest posture. The rig's rest posture (anny: all local deltas identity, an A-pose;
  SMPL-X: zero pose, a T-pose) is expressed as project coordinates `q_rest` by
  `fit_rest_coordinates`: the project model's anatomical segment frames, built from its
  FK markers, are fitted to the same frames built from the rig's rest-pose virtual
  markers (`anatomical_frames`).
* Orientation change. For each project body b, dR_b(t) = R_b(q(t)) R_b(q_rest)^T (world
  frame). A bone c driven by body b gets the world orientation G_c(t) = dR_b(t) G0_c.
  Bones not driven by a body keep their rest orientation relative to their parent
  (dR_c = dR_parent): clavicles, fingers, face, eyes. A bone can also follow a
  fraction f of the rotation from body a to body b (geodesic interpolation,
  dR = dR_a Exp(f Log(dR_a^T dR_b))): the spine bones share the lumbar rotation so
  that the mesh bends smoothly.
* Local rotations. The rig's parent-relative rotation of bone c, relative to its rest
  and expressed in its rest frame, is D_c = G0_c^T dR_p^T dR_c G0_c (root: parent
  dR = I); identity D everywhere is the rest posture. This is anny's 'local-bone'
  delta and SMPL-X's axis-angle joint rotation (whose rest frames are the native axes).
* Root translation. The mesh's pelvis landmark origin (mid-ASIS, as the project
  model's pelvis origin) follows the OpenSim pelvis origin scaled by
  `translation_scale`: root(t) = s * p_pelvis(t) - dR_pelvis(t) @ o, with o the
  rest-posture vector from the rig's root joint to the mesh mid-ASIS (calibrated on
  the rest pose). s = (subject's standing mid-ASIS height) / (model's pelvis_ty
  default) keeps the feet on the floor for a subject of another size.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Mapping, Sequence

import jax
import numpy as np
from scipy import optimize
from scipy.spatial.transform import Rotation

from banet_jax.skeleton import forward_kinematics
from banet_jax.skeleton.models import project_skeleton
from odah_tfds.body import base

# Frames fitted to find the rig's rest posture: the limb segments, whose frames rest on
# joint centres and bony landmarks (the toes have a single marker and keep mtp = 0).
FIT_BODIES = ('femur_r', 'tibia_r', 'calcn_r', 'femur_l', 'tibia_l', 'calcn_l',
              'humerus_r', 'radius_r', 'hand_r', 'humerus_l', 'radius_l', 'hand_l')
# Coordinates never fitted: the pelvis (orientation and translation) and the lumbar
# joint -- the rig's rest trunk is taken as upright and level (anny's rest and SMPL-X's
# zero pose both stand upright; the trunk landmark frames, C7/CLAV/T10/STRN and
# ASIS/PSIS, reflect soft-tissue landmark placement more than posture) --, the coupled
# knee_beta (set from knee_angle) and the MTP angles (one toe marker).
_NOT_FITTED = ('pelvis_tilt', 'pelvis_list', 'pelvis_rotation', 'pelvis_tx', 'pelvis_ty',
               'pelvis_tz', 'knee_angle_r_beta', 'knee_angle_l_beta', 'mtp_angle_r',
               'mtp_angle_l', 'lumbar_extension', 'lumbar_bending', 'lumbar_rotation')
# Forward kinematics runs in fixed-size chunks, so jit compiles once per process.
FK_CHUNK = 64


@dataclasses.dataclass(frozen=True)
class BoneDriver:
  """How one rig bone follows the project model.

  body=None: rigid with its parent. Otherwise the bone takes body's orientation
  change; with `blend_from` set it takes the fraction `fraction` of the rotation
  from `blend_from`'s orientation change to `body`'s (geodesic interpolation).
  """

  body: str | None = None
  blend_from: str | None = None
  fraction: float = 1.0


@dataclasses.dataclass(frozen=True, eq=False)
class Rig:
  """A backend's skeleton as the retargeting sees it.

  Attributes:
    bone_names: B names.
    parents: B parent indices, -1 for the root (index 0); parents precede children.
    rest_rotations: (B, 3, 3) world-frame rest orientations G0 (bone -> world).
    drivers: B `BoneDriver`s.
  """

  bone_names: tuple[str, ...]
  parents: tuple[int, ...]
  rest_rotations: np.ndarray
  drivers: tuple[BoneDriver, ...]

  def __post_init__(self):
    b = len(self.bone_names)
    if len(self.parents) != b or len(self.drivers) != b:
      raise ValueError('bone_names, parents and drivers must have the same length')
    if self.parents[0] != -1 or any(not 0 <= p < i for i, p in enumerate(self.parents) if i):
      raise ValueError('parents must list the root first (-1) and every parent before its '
                       'children')
    if np.shape(self.rest_rotations) != (b, 3, 3):
      raise ValueError(f'rest_rotations must be ({b}, 3, 3), got {np.shape(self.rest_rotations)}')
    if self.drivers[0].body is None:
      raise ValueError('the root bone must be driven by a body (the pelvis)')


@dataclasses.dataclass(frozen=True, eq=False)
class Calibration:
  """Per-subject retargeting calibration (see the module docstring).

  Attributes:
    q_rest: (C,) the rig's rest posture as project coordinates (radians).
    pelvis_offset: (3,) world vector from the rig's root joint to the mesh mid-ASIS in
      the rest posture (metres).
    translation_scale: s, multiplies the model's pelvis translation.
    fit_errors_deg: body -> angle between the fitted and the mesh segment frame.
  """

  q_rest: np.ndarray
  pelvis_offset: np.ndarray
  translation_scale: float
  fit_errors_deg: Mapping[str, float]


# ---- forward kinematics ----------------------------------------------------------------

@functools.lru_cache(maxsize=4)
def _jitted_fk(skel):
  def fk(q):
    out = forward_kinematics(skel, q, enforce_couplers=True)
    return out.body_rotations, out.body_positions, out.markers
  return jax.jit(fk)


def project_fk(q, skel=None):
  """Project-model FK in float64 numpy: (rotations (T, B, 3, 3), positions (T, B, 3),
  markers (T, M, 3)) for coordinates q (T, C); knee_beta is set from knee_angle.

  Runs a jit-compiled FK on chunks of `FK_CHUNK` frames (one compilation per process).
  """
  skel = skel or project_skeleton()
  q = np.asarray(q, dtype=np.float64)
  if q.ndim != 2 or q.shape[1] != skel.num_coordinates:
    raise ValueError(f'coordinates must have shape (T, {skel.num_coordinates}), got {q.shape}')
  fk = _jitted_fk(skel)
  outs = []
  with jax.enable_x64(True):
    for start in range(0, len(q), FK_CHUNK):
      chunk = q[start:start + FK_CHUNK]
      n = len(chunk)
      padded = np.concatenate([chunk, np.repeat(chunk[-1:], FK_CHUNK - n, axis=0)])
      outs.append([np.asarray(a)[:n] for a in fk(padded)])
  return tuple(np.concatenate([o[k] for o in outs]) for k in range(3))


# ---- anatomical frames --------------------------------------------------------------------

def _unit(v):
  return v / np.linalg.norm(v, axis=-1, keepdims=True)


def _frame_yz(y_raw, z_raw):
  """Right-handed frame with y along y_raw and z as close to z_raw as possible."""
  y = _unit(y_raw)
  x = _unit(np.cross(y, z_raw))
  return np.stack([x, y, np.cross(x, y)], axis=-1)


def _frame_xz(x_raw, z_raw):
  """Right-handed frame with x along x_raw and z as close to z_raw as possible."""
  x = _unit(x_raw)
  y = _unit(np.cross(z_raw, x))
  return np.stack([x, y, np.cross(x, y)], axis=-1)


def anatomical_frames(markers: Mapping[str, np.ndarray], bodies: Sequence[str] = FIT_BODIES
                      ) -> dict[str, np.ndarray]:
  """Segment frames (..., 3, 3) from marker positions (..., 3), columns = x, y, z axes.

  Built the same way on the project model and on a mesh, so they are comparable:
  pelvis: x = PSIS-mid -> ASIS-mid, z ~ LASI -> RASI; femur: y = KJC -> HJC, z ~ MFC ->
  LFC (right; LFC -> MFC left, i.e. always towards world +z at the anatomical posture);
  tibia: y = AJC -> KJC, z ~ across the malleoli; calcn: x = CAL -> TOE, z ~ across
  MT1 / MT5; torso: y = (T10 + STRN) / 2 -> (C7 + CLAV) / 2, z ~ LACR -> RACR; humerus:
  y = EJC -> SJC, z ~ across the epicondyles; radius (forearm): y = WJC -> EJC, z ~
  across the styloids (WRB -> WRA right); hand: y = MCP-mid -> WJC, z ~ MCP5 -> MCP2
  (right).
  """
  m = {k: np.asarray(v, dtype=np.float64) for k, v in markers.items()}
  out = {}
  for body in bodies:
    side = body[-1] if body[-2:] in ('_r', '_l') else ''
    p = side.upper()
    sign = 1.0 if side == 'r' else -1.0
    if body == 'pelvis':
      f = _frame_xz(0.5 * (m['RASI'] + m['LASI']) - 0.5 * (m['RPSI'] + m['LPSI']),
                    m['RASI'] - m['LASI'])
    elif body == 'torso':
      f = _frame_yz(0.5 * (m['C7'] + m['CLAV']) - 0.5 * (m['T10'] + m['STRN']),
                    m['RACR'] - m['LACR'])
    elif body.startswith('femur'):
      f = _frame_yz(m[p + 'HJC'] - m[p + 'KJC'], sign * (m[p + 'LFC'] - m[p + 'MFC']))
    elif body.startswith('tibia'):
      f = _frame_yz(m[p + 'KJC'] - m[p + 'AJC'], sign * (m[p + 'LMAL'] - m[p + 'MMAL']))
    elif body.startswith('calcn'):
      f = _frame_xz(m[p + 'TOE'] - m[p + 'CAL'], sign * (m[p + 'MT5'] - m[p + 'MT1']))
    elif body.startswith('humerus'):
      f = _frame_yz(m[p + 'SJC'] - m[p + 'EJC'], sign * (m[p + 'LEL'] - m[p + 'MEL']))
    elif body.startswith('radius'):
      f = _frame_yz(m[p + 'EJC'] - m[p + 'WJC'], sign * (m[p + 'WRA'] - m[p + 'WRB']))
    elif body.startswith('hand'):
      f = _frame_yz(m[p + 'WJC'] - 0.5 * (m[p + 'MCP2'] + m[p + 'MCP5']),
                    sign * (m[p + 'MCP2'] - m[p + 'MCP5']))
    else:
      raise ValueError(f'no anatomical frame is defined for body {body!r}')
    out[body] = f
  return out


def _marker_dict(names, positions):
  return {n: positions[..., i, :] for i, n in enumerate(names)}


def fit_rest_coordinates(rest_markers: Mapping[str, np.ndarray], skel=None,
                         bodies: Sequence[str] = FIT_BODIES
                         ) -> tuple[np.ndarray, dict[str, float]]:
  """The project coordinates whose segment orientations best match a rig's rest pose.

  Minimises sum_b |F_b(FK markers(q)) - F_b(rest markers)|_F^2 over the rotational
  coordinates (pelvis translations, knee_beta and mtp excluded), within the model's
  coordinate ranges, with scipy's least_squares and finite-difference Jacobians
  computed as one batched FK call. The pelvis and lumbar coordinates stay at their
  defaults (upright, level trunk; see `_NOT_FITTED`).

  Args:
    rest_markers: marker name -> (3,) world position on the rest mesh (every marker
      `anatomical_frames` uses).
    skel: the project Skeleton (default: the project model).
    bodies: the frames to fit.

  Returns:
    (q_rest (C,) float64 -- non-fitted coordinates at their defaults, per-body frame
    angle error in degrees (dict)).
  """
  skel = skel or project_skeleton()
  names = list(skel.coordinate_names)
  free = np.array([i for i, n in enumerate(names) if n not in _NOT_FITTED])
  q0 = np.asarray(skel.default_coordinates, dtype=np.float64).copy()
  target = anatomical_frames(rest_markers, bodies)
  target = np.stack([target[b] for b in bodies])  # (K, 3, 3)
  ranges = np.asarray(skel.coordinate_ranges, dtype=np.float64)

  def frames(qs):
    _, _, mk = project_fk(qs, skel)
    f = anatomical_frames(_marker_dict(skel.marker_names, mk), bodies)
    return np.stack([f[b] for b in bodies], axis=1)  # (N, K, 3, 3)

  def full(x):
    q = q0.copy()
    q[free] = x
    return q

  h = 1e-6
  cache = {}

  def evaluate(x):
    key = x.tobytes()
    if key not in cache:
      qs = np.repeat(full(x)[None], len(free) + 1, axis=0)
      qs[np.arange(1, len(free) + 1), free] += h
      f = frames(qs) - target[None]
      r = f.reshape(len(qs), -1)
      cache.clear()
      cache[key] = (r[0], ((r[1:] - r[0]) / h).T)
    return cache[key]

  lo, hi = ranges[free, 0], ranges[free, 1]
  x0 = np.clip(q0[free], lo, hi)
  res = optimize.least_squares(lambda x: evaluate(x)[0], x0, jac=lambda x: evaluate(x)[1],
                               bounds=(lo, hi), method='trf', xtol=1e-10, ftol=1e-12,
                               gtol=1e-10, max_nfev=200)
  q = full(res.x)
  fit = frames(q[None])[0]
  errors = {b: float(np.degrees(np.linalg.norm(Rotation.from_matrix(f.T @ g).as_rotvec())))
            for b, f, g in zip(bodies, fit, target)}
  return q, errors


# ---- retargeting ----------------------------------------------------------------------------

def body_rotation_deltas(q, q_rest, skel=None) -> tuple[np.ndarray, np.ndarray]:
  """World-frame orientation changes dR_b(t) = R_b(q(t)) R_b(q_rest)^T of every project
  body, (T, B, 3, 3), and the pelvis origins (T, 3)."""
  skel = skel or project_skeleton()
  q = np.asarray(q, dtype=np.float64)
  rot, pos, _ = project_fk(np.concatenate([np.asarray(q_rest, np.float64)[None], q]), skel)
  rest = rot[0]
  deltas = np.einsum('tbij,bkj->tbik', rot[1:], rest)
  return deltas, pos[1:, skel.body_index(base.PELVIS)]


def _slerp_fraction(r_from, r_to, fraction):
  """r_from Exp(f Log(r_from^T r_to)) for (T, 3, 3) rotations."""
  rel = np.einsum('tji,tjk->tik', r_from, r_to)
  step = Rotation.from_rotvec(fraction * Rotation.from_matrix(rel).as_rotvec()).as_matrix()
  return np.einsum('tij,tjk->tik', r_from, step)


def bone_rotation_deltas(rig: Rig, body_deltas: np.ndarray, skel=None) -> np.ndarray:
  """World-frame orientation change (T, B_rig, 3, 3) of every rig bone."""
  skel = skel or project_skeleton()
  t = body_deltas.shape[0]
  out = np.empty((t, len(rig.bone_names), 3, 3))
  for c, drv in enumerate(rig.drivers):
    if drv.body is None:
      out[:, c] = out[:, rig.parents[c]]
      continue
    target = body_deltas[:, skel.body_index(drv.body)]
    if drv.blend_from is None:
      out[:, c] = target
    else:
      out[:, c] = _slerp_fraction(body_deltas[:, skel.body_index(drv.blend_from)], target,
                                  drv.fraction)
  return out


def local_rotations(rig: Rig, bone_deltas: np.ndarray) -> np.ndarray:
  """Parent-relative rotations D_c = G0_c^T dR_p^T dR_c G0_c (root: parent dR = I),
  (T, B, 3, 3); identity everywhere is the rig's rest posture."""
  g0 = np.asarray(rig.rest_rotations, dtype=np.float64)
  parents = np.asarray(rig.parents)
  parent_delta = bone_deltas[:, np.maximum(parents, 0)].copy()
  parent_delta[:, 0] = np.eye(3)
  rel = np.einsum('tbji,tbjk->tbik', parent_delta, bone_deltas)
  return np.einsum('bji,tbjk,bkl->tbil', g0, rel, g0)


def root_translations(body_deltas_pelvis: np.ndarray, pelvis_origin: np.ndarray,
                      calibration: Calibration) -> np.ndarray:
  """World position (T, 3) of the rig's root joint: the mesh mid-ASIS follows
  translation_scale * the OpenSim pelvis origin."""
  return (calibration.translation_scale * pelvis_origin
          - np.einsum('tij,j->ti', body_deltas_pelvis, calibration.pelvis_offset))


def check_motion(motion_coordinates, skel=None) -> np.ndarray:
  """(T, C) float64 coordinates from an array or a `Motion` (anything with
  `.coordinates`; its `.coordinate_names`, when present, must be the skeleton's)."""
  skel = skel or project_skeleton()
  names = getattr(motion_coordinates, 'coordinate_names', None)
  if names is not None and tuple(names) != tuple(skel.coordinate_names):
    raise ValueError('the motion\'s coordinate_names differ from the project model\'s '
                     f'{skel.coordinate_names}: got {tuple(names)}')
  q = getattr(motion_coordinates, 'coordinates', motion_coordinates)
  q = np.asarray(q, dtype=np.float64)
  if q.ndim != 2 or q.shape[1] != skel.num_coordinates or len(q) == 0:
    raise ValueError(f'motion coordinates must have shape (T, {skel.num_coordinates}) with '
                     f'T >= 1 in Skeleton.coordinate_names order, got {q.shape}')
  if not np.all(np.isfinite(q)):
    raise ValueError('motion coordinates contain non-finite values')
  return q


def retarget_rotations(rig: Rig, q, calibration: Calibration, skel=None):
  """Local rotations (T, B, 3, 3) and root positions (T, 3) for coordinates q (T, C)."""
  skel = skel or project_skeleton()
  q = check_motion(q, skel)
  body_deltas, pelvis_origin = body_rotation_deltas(q, calibration.q_rest, skel)
  bone_deltas = bone_rotation_deltas(rig, body_deltas, skel)
  local = local_rotations(rig, bone_deltas)
  roots = root_translations(body_deltas[:, skel.body_index(base.PELVIS)], pelvis_origin,
                            calibration)
  return local, roots


def calibrate(body, shape, rest_native_poses, skel=None) -> Calibration:
  """Retargeting calibration of `shape` on a backend (see `Calibration`).

  Poses the rig's rest posture (`rest_native_poses`, one frame) with its root joint at
  the world origin, fits `q_rest` to its virtual markers, takes the rest vector root ->
  mid-ASIS as the pelvis offset, then poses the project model's default (zero) posture
  and sets translation_scale = (mid-ASIS height above the lowest vertex) / (model's
  default pelvis_ty), so that the default pelvis height puts the subject's feet on the
  floor.

  Args:
    body: a `BodyModel` whose `retarget` accepts `calibration=`.
    shape: the subject.
    rest_native_poses: the backend's rest pose, one frame.
  """
  skel = skel or project_skeleton()
  rest = body.pose(shape, rest_native_poses, root_translation=np.zeros((1, 3)))
  rest_markers = {n: rest.markers[0, i].astype(np.float64) for i, n in enumerate(rest.marker_names)}
  q_rest, errors = fit_rest_coordinates(rest_markers, skel)
  mid_asis = 0.5 * (rest_markers['RASI'] + rest_markers['LASI'])
  provisional = Calibration(q_rest, mid_asis, 1.0, errors)
  q0 = np.asarray(skel.default_coordinates, dtype=np.float64)[None]
  poses, roots = body.retarget(shape, q0, calibration=provisional)
  standing = body.pose(shape, poses, roots)
  sole = float(standing.vertices[0, :, 1].min())
  asis = 0.5 * (standing.marker('RASI')[0, 1] + standing.marker('LASI')[0, 1])
  scale = (float(asis) - sole) / float(q0[0, skel.coordinate_index('pelvis_ty')])
  return Calibration(q_rest, mid_asis, scale, errors)
