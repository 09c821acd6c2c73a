r"""Throughput of the JAX skeleton layer against the plain OpenSim API.

COMMAND:
  python benchmarks/skeleton_fk.py                                   # project model
  python benchmarks/skeleton_fk.py ../shared/osim/*.osim             # plus extra models
  python benchmarks/skeleton_fk.py --batches=1,64,4096 --dtype=float64 --repeats=5

Prints a Markdown table: one row per model with its coordinate count C and marker count M,
OpenSim poses/s (single thread: for each pose set every coordinate with
`coord.setValue(state, v, False)`, `model.realizePosition(state)`, then
`marker.getLocationInGround(state)` for every marker), and for every batch size the poses/s
of the jit-compiled `forward_kinematics(skel, q).markers` (compile excluded, results blocked
on, median over --repeats timing runs of several calls each) and its ratio to OpenSim.
Models without markers time joint centres on both sides instead (marked in the table).
Poses are random, uniform in each coordinate's range (clipped to +-pi). Runs unchanged on CPU
and GPU: JAX uses its default backend unless --platform says otherwise.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import pathlib
import statistics
import sys
import time
from collections.abc import Sequence

from absl import app
from absl import flags
from absl import logging
import numpy as np

if not __package__:  # run as a script: only benchmarks/ is on sys.path, not the repository
  sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))
from benchmarks import _common  # pylint: disable=g-import-not-at-top,wrong-import-position

_BATCHES = flags.DEFINE_list("batches", ["1", "64", "4096", "65536"],
                             "JAX batch sizes (poses per call).")
_REPEATS = flags.DEFINE_integer("repeats", 5, "Timing runs per batch size (median is shown).")
_DTYPE = flags.DEFINE_enum("dtype", "float32", ["float32", "float64"],
                           "dtype of the JAX coordinates (float64 enables jax x64).")
_OPENSIM_POSES = flags.DEFINE_integer("opensim_poses", 500, "Poses timed through OpenSim.")
_PLATFORM = flags.DEFINE_string("platform", None,
                                "JAX platform (cpu, gpu, ...); default: JAX's default backend.")
_NO_PROJECT_MODEL = flags.DEFINE_bool("no_project_model", False,
                                      "Only benchmark the .osim files given as arguments.")
_JSON = flags.DEFINE_string("json", None, "Also write the rows to this JSON file "
                            "(benchmarks/gpu_suite.py reads it).")

# Time per timing run of the JAX layer (several calls for small batches).
_TARGET_RUN_S = 0.2


@dataclasses.dataclass
class Row:
  model: str
  num_coordinates: int
  num_points: int
  points: str                      # "markers" or "joint centres"
  opensim_poses_per_s: float
  jax_poses_per_s: dict[int, float]


def _random_poses(ranges: np.ndarray, default: np.ndarray, n: int, seed: int = 0) -> np.ndarray:
  lo = np.clip(ranges[:, 0], -math.pi, math.pi)
  hi = np.clip(ranges[:, 1], -math.pi, math.pi)
  lo, hi = np.minimum(lo, hi), np.maximum(lo, hi)
  q = np.random.default_rng(seed).uniform(lo, hi, size=(n, len(default)))
  return np.where(hi > lo, q, default)


def time_opensim(path: str, coordinate_names: Sequence[str], poses: np.ndarray,
                 use_markers: bool) -> float:
  """Poses per second of the plain OpenSim API loop (single thread)."""
  import opensim as osim  # pylint: disable=g-import-not-at-top
  osim.Logger.setLevelString("error")
  model = osim.Model(path)
  state = model.initSystem()
  cset = model.getCoordinateSet()
  coords = [cset.get(name) for name in coordinate_names]
  if use_markers:
    mset = model.getMarkerSet()
    points = [mset.get(i) for i in range(mset.getSize())]
    locate = [m.getLocationInGround for m in points]
  else:
    jset = model.getJointSet()
    locate = [jset.get(i).getChildFrame().getPositionInGround for i in range(jset.getSize())]
  rows = poses.tolist()

  def run(qs):
    out = None
    for q in qs:
      for c, v in zip(coords, q):
        c.setValue(state, v, False)
      model.realizePosition(state)
      out = [f(state) for f in locate]
    return out

  run(rows[:5])  # warm-up
  t0 = time.perf_counter()
  run(rows)
  return len(rows) / (time.perf_counter() - t0)


def time_jax(skel, poses: np.ndarray, batch: int, repeats: int, dtype: str,
             use_markers: bool) -> float:
  """Poses per second of the jit-compiled layer at one batch size (compile excluded)."""
  import jax  # pylint: disable=g-import-not-at-top
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top
  from banet_jax.skeleton import forward_kinematics  # pylint: disable=g-import-not-at-top

  if use_markers:
    fk = jax.jit(lambda q: forward_kinematics(skel, q).markers)
  else:
    fk = jax.jit(lambda q: forward_kinematics(skel, q).joint_centers)
  reps = -(-batch // len(poses))
  q = jax.device_put(jnp.asarray(np.tile(poses, (reps, 1))[:batch], dtype=dtype))
  fk(q).block_until_ready()  # compile + first run
  t0 = time.perf_counter()
  fk(q).block_until_ready()
  single = time.perf_counter() - t0
  calls = max(1, min(10_000, int(_TARGET_RUN_S / max(single, 1e-7))))
  per_call = []
  for _ in range(max(1, repeats)):
    t0 = time.perf_counter()
    for _ in range(calls):
      out = fk(q)
    out.block_until_ready()
    per_call.append((time.perf_counter() - t0) / calls)
  return batch / statistics.median(per_call)


def benchmark_model(path: str, batches: Sequence[int], repeats: int = 5,
                    dtype: str = "float32", opensim_poses: int = 500) -> Row:
  from banet_jax.skeleton import load_osim  # pylint: disable=g-import-not-at-top
  skel = load_osim(path)
  ranges = np.asarray(skel.coordinate_ranges, dtype=np.float64)
  default = np.asarray(skel.default_coordinates, dtype=np.float64)
  use_markers = len(skel.marker_names) > 0
  poses = _random_poses(ranges, default, max(1, opensim_poses))
  poses = np.where(skel.locked, default, poses)  # OpenSim ignores setValue on locked coordinates
  os_rate = time_opensim(path, skel.coordinate_names, poses, use_markers)
  rates = {b: time_jax(skel, poses, b, repeats, dtype, use_markers) for b in batches}
  n_points = len(skel.marker_names) if use_markers else len(skel.joint_names)
  return Row(model=os.path.basename(path), num_coordinates=len(skel.coordinate_names),
             num_points=n_points, points="markers" if use_markers else "joint centres",
             opensim_poses_per_s=os_rate, jax_poses_per_s=rates)


def _fmt_rate(x: float) -> str:
  return f"{x:,.0f}" if x >= 100 else f"{x:,.1f}"


def _fmt_ratio(x: float) -> str:
  return f"{x:,.0f}x" if x >= 100 else (f"{x:.1f}x" if x >= 1 else f"{x:.2f}x")


def markdown_table(rows: Sequence[Row], batches: Sequence[int]) -> str:
  head = ["model", "C", "M", "opensim poses/s"]
  for b in batches:
    head += [f"jax B={b} poses/s", f"B={b} / opensim"]
  lines = ["| " + " | ".join(head) + " |",
           "|" + "|".join(["---"] + ["---:"] * (len(head) - 1)) + "|"]
  for r in rows:
    m = str(r.num_points) if r.points == "markers" else f"0 ({r.num_points} joint centres)"
    cells = [r.model, str(r.num_coordinates), m, _fmt_rate(r.opensim_poses_per_s)]
    for b in batches:
      rate = r.jax_poses_per_s[b]
      cells += [_fmt_rate(rate), _fmt_ratio(rate / r.opensim_poses_per_s)]
    lines.append("| " + " | ".join(cells) + " |")
  return "\n".join(lines)


def run(paths: Sequence[str], batches: Sequence[int], repeats: int = 5,
        dtype: str = "float32", opensim_poses: int = 500, verbose: bool = True,
        json_path: str | None = None) -> str:
  """Benchmarks every model in `paths` and returns (and prints) the Markdown report;
  `json_path`: also writes the rows there (a list of `Row` dicts, platform included)."""
  import jax  # pylint: disable=g-import-not-at-top

  say = print if verbose else (lambda *a, **k: None)
  info = _common.platform_info(dtype)
  say(info)
  rows = []
  with jax.enable_x64(dtype == "float64"):
    for path in paths:
      say(f"benchmarking {path} ...", flush=True)
      rows.append(benchmark_model(path, batches, repeats, dtype, opensim_poses))
  table = markdown_table(rows, batches)
  if json_path:
    pathlib.Path(json_path).write_text(json.dumps(
        [dict(dataclasses.asdict(r), platform=jax.default_backend(), dtype=dtype) for r in rows],
        indent=1))
  say("")
  say(table)
  return info + "\n\n" + table


def main(argv: Sequence[str]) -> None:
  if not flags.FLAGS["verbosity"].present:
    logging.set_verbosity(logging.WARNING)  # hides JAX's backend-probing INFO lines
  if _PLATFORM.value:
    import jax  # pylint: disable=g-import-not-at-top
    jax.config.update("jax_platforms", _PLATFORM.value)
  paths = []
  if not _NO_PROJECT_MODEL.value:
    from banet_jax.skeleton.models import DEFAULT_MODEL_PATH  # pylint: disable=g-import-not-at-top
    paths.append(str(DEFAULT_MODEL_PATH))
  paths += list(argv[1:])
  if not paths:
    raise app.UsageError("no models to benchmark")
  run(paths, [int(b) for b in _BATCHES.value], _REPEATS.value, _DTYPE.value,
      _OPENSIM_POSES.value, json_path=_JSON.value)


if __name__ == "__main__":
  app.run(main)
