"""Smoke tests of launch/skeleton_demo.py and benchmarks/skeleton_fk.py."""

from __future__ import annotations

import jax
import numpy as np
import pytest

from benchmarks import skeleton_fk
from launch import skeleton_demo

_PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(autouse=True)
def _fast_compile():
  """XLA compiles the full-body model about twice as fast with most optimisations off
  (the flax examples' CPU-test setting); these smoke tests do not need fast code."""
  old = jax.config.read("jax_disable_most_optimizations")
  jax.config.update("jax_disable_most_optimizations", True)
  yield
  jax.config.update("jax_disable_most_optimizations", old)


def _lowest_points(result) -> np.ndarray:
  pts = np.concatenate([result.markers, result.joint_centers], axis=1)
  return pts[:, :, 1].min(axis=1)


def test_demo_on_project_model(tmp_path, capsys, project_model_path):
  result = skeleton_demo.run_demo(str(project_model_path), str(tmp_path))
  out = capsys.readouterr().out

  png = tmp_path / "postures.png"
  assert png.is_file()
  assert png.read_bytes()[:8] == _PNG_MAGIC
  assert png.stat().st_size > 10_000
  assert str(png.resolve()) in out
  for posture in skeleton_demo.POSTURES:
    assert posture in result.table
    assert posture in out
  for name in result.table_points:
    assert name in result.table

  assert np.isfinite(result.markers).all() and np.isfinite(result.joint_centers).all()
  # Feet on the floor: every posture's lowest point sits at the standing one's (+-5 mm).
  lowest = _lowest_points(result)
  np.testing.assert_allclose(lowest, lowest[0], atol=5e-3)
  # The squat lowers the pelvis by well over 20 cm; the other postures by much less.
  names = list(skeleton_demo.POSTURES)
  from banet_jax.skeleton import load_osim  # pylint: disable=g-import-not-at-top
  ty = load_osim(str(project_model_path)).coordinate_index("pelvis_ty")
  pelvis = result.coordinates[:, ty]
  assert pelvis[names.index("squat")] < pelvis[0] - 0.2
  assert abs(pelvis[names.index("arm_abduction")] - pelvis[0]) < 0.01


def test_demo_on_extra_models(tmp_path, extra_osim_path):
  result = skeleton_demo.run_demo(str(extra_osim_path), str(tmp_path), verbose=False)
  assert (tmp_path / "postures.png").is_file()
  assert np.isfinite(result.joint_centers).all()
  lowest = _lowest_points(result)
  np.testing.assert_allclose(lowest, lowest[0], atol=5e-3)


def _parse_markdown(report: str) -> tuple[list[str], list[list[str]]]:
  rows = [line for line in report.splitlines() if line.startswith("|")]
  cells = [[c.strip() for c in line.strip().strip("|").split("|")] for line in rows]
  return cells[0], cells[2:]


def test_benchmark_smoke(project_model_path):
  report = skeleton_fk.run([str(project_model_path)], batches=[1, 8], repeats=1,
                           opensim_poses=10, verbose=False)
  header, rows = _parse_markdown(report)
  assert header == ["model", "C", "M", "opensim poses/s",
                    "jax B=1 poses/s", "B=1 / opensim", "jax B=8 poses/s", "B=8 / opensim"]
  assert len(rows) == 1
  row = rows[0]
  assert row[0] == project_model_path.name
  assert int(row[1]) > 0
  for rate in (row[3], row[4], row[6]):
    assert float(rate.replace(",", "")) > 0
  for ratio in (row[5], row[7]):
    assert ratio.endswith("x") and float(ratio[:-1].replace(",", "")) > 0


def test_benchmark_float64_smoke(project_model_path):
  x64_before = jax.config.read("jax_enable_x64")
  report = skeleton_fk.run([str(project_model_path)], batches=[2], repeats=1,
                           dtype="float64", opensim_poses=5, verbose=False)
  assert "dtype float64" in report
  _, rows = _parse_markdown(report)
  assert float(rows[0][4].replace(",", "")) > 0
  assert jax.config.read("jax_enable_x64") == x64_before  # the x64 switch did not leak out
