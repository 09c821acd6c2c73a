r"""Skeleton demo: pose an OpenSim model in textbook postures with the JAX skeleton layer.

Loads a Rajagopal-family OpenSim model with `banet_jax.skeleton.load_osim`, builds four
postures by setting coordinates by name (standing, squat, gait heel strike, arm abduction),
runs all of them in one batched, jit-compiled `forward_kinematics` call, prints a table of
selected marker positions (mm) and draws front and side views of every posture.

COMMAND:
  python -m launch.skeleton_demo                       # project model, outputs/skeleton_demo/
  python -m launch.skeleton_demo --model=../shared/osim/Rajagopal2016.osim --out_dir=/tmp/demo
  python -m launch.skeleton_demo --markers=RASI,RKJC,RAJC

Runtime: about 10-20 s on a 2-core CPU, mostly XLA compilation. Output: --out_dir/postures.png.

Coordinates absent from the model are skipped (reported once). Knee angles follow the
model's sign convention (flexion positive in Rajagopal2016, negative in gait2354), read off
the coordinate range. For every posture the pelvis height (`pelvis_ty`) is then shifted so
that the lowest point of the body (markers, joint centres, body origins) is at the height of
the lowest point in the standing posture, i.e. the feet stay on the floor.
"""

from __future__ import annotations

import dataclasses
import math
import os
import re
from collections.abc import Sequence

from absl import app
from absl import flags
from absl import logging
import jax
import jax.numpy as jnp
import numpy as np

from banet_jax.skeleton import OsimError, forward_kinematics, load_osim
from banet_jax.skeleton.models import model_path as resolve_model

_MODEL = flags.DEFINE_string(
    "model", None,
    "OpenSim model (.osim). Default: the project model "
    "banet_jax.skeleton.models.DEFAULT_MODEL_PATH.")
_OUT_DIR = flags.DEFINE_string(
    "out_dir", os.path.join("outputs", "skeleton_demo"),
    "Folder for postures.png (created if needed).")
_MARKERS = flags.DEFINE_list(
    "markers", None,
    "Comma-separated marker names for the table. Default: a handful of key markers "
    "(C7, RASI, right knee/ankle/toe, right shoulder/elbow/wrist; the first name of each "
    "group that the model has), or the first joint centres when the model has no markers.")

# Postures as {coordinate name: value}; angles in degrees, translations in metres, in the
# Rajagopal2016 conventions (hip/knee flexion, ankle dorsiflexion positive; arm_add negative
# abducts). Coordinates not named keep the model's default value.
_SQUAT = {
    # Foot flat needs pelvis_tilt ~= knee - hip - ankle (sagittal plane); the trunk leans
    # forward further through the lumbar joint; arms reach forward for balance.
    # (ankle 20 deg: the project model's dorsiflexion limit).
    "pelvis_tilt": -10.0,
    "hip_flexion_r": 95.0, "hip_flexion_l": 95.0,
    "knee_angle_r": 105.0, "knee_angle_l": 105.0,
    "ankle_angle_r": 20.0, "ankle_angle_l": 20.0,
    "lumbar_extension": -15.0,
    "arm_flex_r": 80.0, "arm_flex_l": 80.0,
}
_GAIT_HEEL_STRIKE = {
    # Right heel strike with the left toes still down (double support); arms swing
    # opposite to the legs. The left hip is extended 20 deg: at 10 deg the right heel of the
    # project model hangs ~9 cm above the floor when the left toes touch it.
    "hip_flexion_r": 25.0, "knee_angle_r": 5.0, "ankle_angle_r": 0.0,
    "hip_flexion_l": -20.0, "knee_angle_l": 35.0, "ankle_angle_l": -10.0,
    "arm_flex_r": -20.0, "arm_flex_l": 20.0,
    "elbow_flex_r": 15.0, "elbow_flex_l": 25.0,
}
_ARM_ABDUCTION = {
    "arm_add_r": -90.0, "arm_add_l": -90.0,
}
POSTURES: dict[str, dict[str, float]] = {
    "standing": {},
    "squat": _SQUAT,
    "gait_heel_strike": _GAIT_HEEL_STRIKE,
    "arm_abduction": _ARM_ABDUCTION,
}

# Default table markers: for each group, the first name that the model has.
_DEFAULT_MARKER_GROUPS = (
    ("C7", "CLAV"),
    ("RASI",),
    ("RKJC", "RKNE", "RLFC"),
    ("RAJC", "RANK", "RLMAL"),
    ("RTOE", "RMT2", "RMT5"),
    ("RSJC", "RSHO", "RACR"),
    ("REJC", "RELB", "RLEL"),
    ("RWJC", "RWRI", "RFAradius", "ROWR"),
)
_KNEE = re.compile(r"^knee_angle_[rl]$")


class UnknownMarkerError(ValueError):
  """--markers names a marker that the model does not have."""


@dataclasses.dataclass(frozen=True)
class DemoResult:
  """What `run_demo` computed (arrays in metres / model units, ground frame)."""
  postures: tuple[str, ...]
  coordinates: np.ndarray      # (P, C) as passed to forward_kinematics
  markers: np.ndarray          # (P, M, 3)
  joint_centers: np.ndarray    # (P, J, 3)
  table_points: tuple[str, ...]
  table: str
  png_path: str


def _is_translation(skel, index: int) -> bool:
  return skel.coordinate_motion_types[index] == "translational"


def _knee_sign(ranges: np.ndarray, index: int) -> float:
  """+1 if the model flexes the knee with positive values (Rajagopal), -1 if negative."""
  lo, hi = float(ranges[index, 0]), float(ranges[index, 1])
  return -1.0 if abs(lo) > abs(hi) else 1.0


def posture_coordinates(skel) -> tuple[np.ndarray, list[str]]:
  """Returns (P, C) coordinates of POSTURES for `skel` and the names it does not have."""
  names = tuple(skel.coordinate_names)
  ranges = np.asarray(skel.coordinate_ranges, dtype=np.float64)
  default = np.asarray(skel.default_coordinates, dtype=np.float64)
  q = np.tile(default, (len(POSTURES), 1))
  missing: list[str] = []
  for p, values in enumerate(POSTURES.values()):
    for name, value in values.items():
      if name not in names:
        if name not in missing:
          missing.append(name)
        continue
      i = skel.coordinate_index(name)
      v = value if _is_translation(skel, i) else math.radians(value)
      if _KNEE.match(name):
        v *= _knee_sign(ranges, i)
        beta = name + "_beta"  # Rajagopal patella coordinate follows the knee angle.
        if beta in names:
          q[p, skel.coordinate_index(beta)] = v
      q[p, i] = v
  return q, missing


def _select_points(skel, requested: Sequence[str] | None) -> tuple[str, list[str], list[int]]:
  """Chooses the table rows: ('marker'|'joint', names, indices)."""
  markers = list(skel.marker_names)
  if requested:
    unknown = [m for m in requested if m not in markers]
    if unknown:
      raise UnknownMarkerError(
          f"markers not in the model: {unknown}; it has: {', '.join(markers)}")
    return "marker", list(requested), [markers.index(m) for m in requested]
  chosen = []
  for group in _DEFAULT_MARKER_GROUPS:
    for m in group:
      if m in markers:
        chosen.append(m)
        break
  if not chosen:
    chosen = markers[:6]
  if chosen:
    return "marker", chosen, [markers.index(m) for m in chosen]
  joints = list(skel.joint_names)[:8]
  return "joint", joints, list(range(len(joints)))


def _parent_joints(skel) -> np.ndarray:
  """For every joint, the index of the joint whose child is its parent body (-1: none)."""
  parent_body = np.asarray(skel.joint_parent_body, dtype=int)
  child_body = np.asarray(skel.joint_child_body, dtype=int)
  joint_of_body = {int(b): j for j, b in enumerate(child_body)}
  return np.array([joint_of_body.get(int(b), -1) if b >= 0 else -1 for b in parent_body],
                  dtype=int)


def format_table(postures: Sequence[str], point_kind: str, names: Sequence[str],
                 points: np.ndarray) -> str:
  """points: (P, N, 3) in metres -> fixed-width table in millimetres."""
  head = ("posture", point_kind, "x [mm]", "y [mm]", "z [mm]")
  wp = max(len(head[0]), *(len(p) for p in postures))
  wn = max(len(head[1]), *(len(n) for n in names))
  lines = [f"{head[0]:<{wp}}  {head[1]:<{wn}}  {head[2]:>8}  {head[3]:>8}  {head[4]:>8}",
           f"{'-' * wp}  {'-' * wn}  {'-' * 8}  {'-' * 8}  {'-' * 8}"]
  for p, posture in enumerate(postures):
    for n, name in enumerate(names):
      x, y, z = (1000.0 * points[p, n]).tolist()
      lines.append(f"{posture:<{wp}}  {name:<{wn}}  {x:8.1f}  {y:8.1f}  {z:8.1f}")
  return "\n".join(lines)


def _side_color(body_name: str) -> str:
  if body_name.endswith("_r"):
    return "tab:red"
  if body_name.endswith("_l"):
    return "tab:blue"
  return "black"


def plot_postures(skel, postures: Sequence[str], joint_centers: np.ndarray,
                  markers: np.ndarray, highlight: Sequence[int], floor_y: float,
                  path: str, title: str) -> None:
  """One row per posture: front view (z, y) and side view (x, y)."""
  import matplotlib  # pylint: disable=g-import-not-at-top  (matplotlib, 0.4 s: not for --help)
  matplotlib.use("Agg")
  # Lazy: after choosing Agg, never at import.
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top

  parents = _parent_joints(skel)
  # The bone from joint j's parent joint to joint j spans j's parent body: colour by its side.
  parent_body = np.asarray(skel.joint_parent_body, dtype=int)
  bodies = tuple(skel.body_names)
  colors = [_side_color(bodies[b]) if 0 <= b < len(bodies) else "black" for b in parent_body]
  pts = np.concatenate([joint_centers, markers], axis=1)  # (P, N, 3)
  pad = 0.1
  y_lo, y_hi = min(floor_y, pts[..., 1].min()) - pad, pts[..., 1].max() + pad
  # The same half-width for both horizontal axes keeps one scale across the whole figure.
  cx, cz = 0.5 * (pts[..., 0].min() + pts[..., 0].max()), 0.5 * (pts[..., 2].min() + pts[..., 2].max())
  half = 0.5 * max(np.ptp(pts[..., 0]), np.ptp(pts[..., 2])) + pad

  n = len(postures)
  fig, axes = plt.subplots(n, 2, figsize=(8, 3.6 * n), squeeze=False)
  for p, posture in enumerate(postures):
    for col, (axis, label, center) in enumerate(((2, "z", cz), (0, "x", cx))):
      ax = axes[p, col]
      jc, mk = joint_centers[p], markers[p]
      for j, pj in enumerate(parents):
        if pj >= 0:
          ax.plot([jc[pj, axis], jc[j, axis]], [jc[pj, 1], jc[j, 1]], "-",
                  color=colors[j], lw=2, solid_capstyle="round")
      ax.plot(jc[:, axis], jc[:, 1], "o", color="black", ms=3)
      if mk.shape[0]:
        ax.plot(mk[:, axis], mk[:, 1], ".", color="0.55", ms=4)
        if len(highlight):
          ax.plot(mk[highlight, axis], mk[highlight, 1], "o", mfc="none",
                  mec="tab:green", ms=6)
      ax.axhline(floor_y, color="0.4", lw=1)
      ax.set_xlim(center - half, center + half)
      ax.set_ylim(y_lo, y_hi)
      ax.set_aspect("equal", adjustable="box")
      ax.grid(alpha=0.3)
      ax.set_xlabel(f"{label} [m]")
      ax.set_ylabel("y [m]")
      if col == 0:
        ax.invert_xaxis()  # seen from the front (+x): the model's right (+z) on the left
        ax.set_title(f"{posture}: front")
      else:
        ax.set_title(f"{posture}: side (from the right)")
  fig.suptitle(title)
  fig.tight_layout()
  fig.savefig(path, dpi=110)
  plt.close(fig)


def run_demo(model_path: str | None = None, out_dir: str = os.path.join("outputs", "skeleton_demo"),
             markers: Sequence[str] | None = None, verbose: bool = True) -> DemoResult:
  """Runs the demo; prints the table (if verbose) and writes <out_dir>/postures.png."""
  say = print if verbose else (lambda *a, **k: None)
  model_path = str(resolve_model(model_path))
  skel = load_osim(model_path)
  names = tuple(skel.coordinate_names)
  say(f"model: {model_path}")
  say(f"  {len(names)} coordinates, {len(skel.body_names)} bodies, "
      f"{len(skel.joint_names)} joints, {len(skel.marker_names)} markers")

  kind, point_names, idx = _select_points(skel, markers)
  q, missing = posture_coordinates(skel)
  if missing:
    say(f"  coordinates not in this model (skipped): {', '.join(missing)}")
  ranges = np.asarray(skel.coordinate_ranges, dtype=np.float64)
  for p, posture in enumerate(POSTURES):
    out = [names[i] for i in range(len(names))
           if not ranges[i, 0] - 1e-9 <= q[p, i] <= ranges[i, 1] + 1e-9]
    if out:
      say(f"  note: {posture}: outside the model's range: {', '.join(out)}")

  @jax.jit
  def fk(qb):
    res = forward_kinematics(skel, qb, enforce_couplers=True)
    return res.markers, res.joint_centers, res.body_positions

  def all_points(m, jc, bp):
    return np.concatenate([np.asarray(m), np.asarray(jc), np.asarray(bp)], axis=1)

  # Pass 1 finds how far each posture's lowest point is from the standing posture's (the
  # first one, which defines the floor); pass 2, the result, has the pelvis height
  # corrected by that much, so the feet stay on the floor.
  pts = all_points(*fk(jnp.asarray(q, dtype=jnp.float32)))
  floor_y = float(pts[0, :, 1].min())
  if "pelvis_ty" in names:
    q[:, skel.coordinate_index("pelvis_ty")] += floor_y - pts[:, :, 1].min(axis=1)
  else:
    say("  note: no pelvis_ty coordinate; postures are not re-grounded")
  mk, jc, _ = fk(jnp.asarray(q, dtype=jnp.float32))
  mk, jc = np.asarray(mk, dtype=np.float64), np.asarray(jc, dtype=np.float64)
  postures = tuple(POSTURES)

  say("\nposture coordinates (deg; translations in m), those set by the demo:")
  for p, posture in enumerate(postures):
    parts = []
    for name in POSTURES[posture]:
      if name in names:
        i = skel.coordinate_index(name)
        parts.append(f"{name}={q[p, i]:.3f}" if _is_translation(skel, i)
                     else f"{name}={math.degrees(q[p, i]):.0f}")
    if "pelvis_ty" in names:
      parts.append(f"pelvis_ty={q[p, skel.coordinate_index('pelvis_ty')]:.3f}")
    say(f"  {posture}: {', '.join(parts) if parts else 'model defaults'}")

  table_pts = mk[:, idx] if kind == "marker" else jc[:, idx]
  table = format_table(postures, kind, point_names, table_pts)
  say(f"\n{kind} positions in the ground frame (x forward, y up, z right):")
  say(table)

  os.makedirs(out_dir, exist_ok=True)
  png = os.path.join(out_dir, "postures.png")
  plot_postures(skel, postures, jc, mk, idx if kind == "marker" else [], floor_y, png,
                title=os.path.basename(model_path))
  say(f"\nwrote {os.path.abspath(png)}")
  return DemoResult(postures=postures, coordinates=q, markers=mk, joint_centers=jc,
                    table_points=tuple(point_names), table=table, png_path=png)


def main(argv: Sequence[str]) -> None:
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {argv[1:]}")
  if not flags.FLAGS["verbosity"].present:
    logging.set_verbosity(logging.WARNING)  # hides JAX's backend-probing INFO lines
  try:
    run_demo(_MODEL.value, _OUT_DIR.value, _MARKERS.value)
  except UnknownMarkerError as e:
    raise app.UsageError(str(e)) from e
  except (FileNotFoundError, OsimError) as e:
    raise SystemExit(f"error: {e}") from e  # one clear line instead of a traceback


if __name__ == "__main__":
  app.run(main)
