"""Shared pytest setup.

* Tests marked `slow` are skipped unless `--runslow` is given or a `-m` expression names
  `slow` (e.g. `-m slow`). The marker is registered in pyproject.toml.
* `project_model_path`: the project's OpenSim model.
* `extra_osim_paths`: the .osim files in $BANET_EXTRA_OSIM_DIR (sorted; [] when unset).
* `extra_osim_path`: a test taking this argument runs once per such file (skipped when the
  variable is unset).
* `smoke_checkpoint`: one tiny checkpoint per session (launch.train with the smoke
  flagfile on generated data: 32-px crops, stage 1), for tests that restore a model.
"""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys

import pytest

EXTRA_OSIM_ENV = "BANET_EXTRA_OSIM_DIR"


def pytest_addoption(parser):
  parser.addoption("--runslow", action="store_true", default=False,
                   help="also run tests marked slow")


def pytest_collection_modifyitems(config, items):
  if config.getoption("--runslow") or "slow" in (config.getoption("markexpr") or ""):
    return
  skip = pytest.mark.skip(reason="slow: run with --runslow (or -m slow)")
  for item in items:
    if "slow" in item.keywords:
      item.add_marker(skip)


def _extra_osim_paths() -> list[pathlib.Path]:
  folder = os.environ.get(EXTRA_OSIM_ENV)
  if not folder:
    return []
  path = pathlib.Path(folder)
  if not path.is_dir():
    raise pytest.UsageError(f"{EXTRA_OSIM_ENV}={folder} is not a directory")
  return sorted(path.glob("*.osim"))


def pytest_generate_tests(metafunc):
  if "extra_osim_path" in metafunc.fixturenames:
    paths = _extra_osim_paths()
    if paths:
      metafunc.parametrize("extra_osim_path", paths, ids=[p.stem for p in paths])
    else:
      metafunc.parametrize("extra_osim_path", [pytest.param(
          None, marks=pytest.mark.skip(reason=f"{EXTRA_OSIM_ENV} not set"))])


@pytest.fixture(scope="session")
def project_model_path() -> pathlib.Path:
  from banet_jax.skeleton.models import DEFAULT_MODEL_PATH  # pylint: disable=g-import-not-at-top
  path = pathlib.Path(DEFAULT_MODEL_PATH)
  assert path.is_file(), f"project model missing: {path}"
  return path


@pytest.fixture(scope="session")
def extra_osim_paths() -> list[pathlib.Path]:
  return _extra_osim_paths()


@pytest.fixture(scope="module")
def fast_compile():
  """XLA backend optimisations off (`jax_disable_most_optimizations`) for one module.

  For modules that compile big programs and run them a few times: the tiny BANet's
  gradient through the skeleton layer compiles in ~half the time (64 s -> 32 s measured
  on the 2-core machine), and runs slower. The flag is read at each compilation, so a
  module asks for it with an autouse module fixture that requests this one; it is
  restored afterwards.
  """
  import jax  # pylint: disable=g-import-not-at-top
  previous = jax.config.read("jax_disable_most_optimizations")
  jax.config.update("jax_disable_most_optimizations", True)
  yield
  jax.config.update("jax_disable_most_optimizations", previous)


@pytest.fixture(scope="session")
def smoke_checkpoint(tmp_path_factory) -> pathlib.Path:
  root = pathlib.Path(__file__).resolve().parents[1]
  workdir = tmp_path_factory.mktemp("smoke_run")
  env = dict(os.environ)
  env["PYTHONPATH"] = os.pathsep.join(p for p in (str(root), env.get("PYTHONPATH")) if p)
  out = subprocess.run([sys.executable, "-m", "launch.train", "--flagfile=launch/flags/smoke.flags",
                        f"--workdir={workdir}"], cwd=root, env=env, capture_output=True,
                       text=True, timeout=900, check=False)
  assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
  return workdir


@pytest.fixture(scope='module')
def gl():
  """Runs a module-level function of the test module in a TF-free GL child process (one
  per test module): rendering and TensorFlow crash in one process."""
  import concurrent.futures  # pylint: disable=g-import-not-at-top
  import multiprocessing  # pylint: disable=g-import-not-at-top
  context = multiprocessing.get_context('spawn')
  with concurrent.futures.ProcessPoolExecutor(max_workers=1, mp_context=context) as pool:
    yield lambda fn, *args: pool.submit(fn, *args).result(timeout=600)
