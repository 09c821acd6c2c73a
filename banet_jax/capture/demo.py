"""The Pose2Sim demo capture, fetched from the package registry (PyPI).

Pose2Sim (https://github.com/perfanalytics/pose2sim, BSD-3-Clause, (c) 2022 perfanalytics)
ships demo trials inside its wheel: four calibrated 60-fps cameras of one person
(`Demo_SinglePerson`: videos/cam01..cam04.mp4, calibration/Calib.qca.txt), of several
persons (`Demo_MultiPerson`) and a batch of two trials (`Demo_Batch`). The videos are
never committed to this repository: `demo_capture_dir` downloads the pinned wheel with pip,
checks its sha256, and extracts `Pose2Sim/Demo_*`, `Pose2Sim/OpenSim_Setup/*.osim` and
Pose2Sim's LICENSE into a cache folder (about 31 MB; the wheel is 51 MB):

    <cache_dir>/Pose2Sim/Demo_SinglePerson/videos/cam01.mp4 ...
    <cache_dir>/LICENSE

cache_dir defaults to $BANET_CACHE_DIR/pose2sim-0.10.49, else
~/.cache/banet_jax/pose2sim-0.10.49. Extraction is atomic (a temporary folder renamed
into place), so a cache folder that exists is complete, and later calls cost nothing.

    python -m banet_jax.capture.demo [--name=Demo_SinglePerson] [--cache_dir=DIR] [--wheel=WHL]

prints the demo folder.
"""

from __future__ import annotations

import argparse
import os
import pathlib
import shutil
import sys
import tempfile
import zipfile

from banet_jax.capture import registry

POSE2SIM_VERSION = '0.10.49'
WHEEL_NAME = f'pose2sim-{POSE2SIM_VERSION}-py3-none-any.whl'
WHEEL_SHA256 = '403e0dc4065898ba6a595e72a8970950310979253d60e24c2e00b16b36bf21e1'
CACHE_ENV = registry.CACHE_ENV
_MARKER = 'pose2sim-wheel.sha256'   # written last inside the extraction, names the wheel


class DemoFetchError(RuntimeError):
  """The Pose2Sim wheel could not be downloaded (registry unreachable, no pip, ...)."""


class DemoChecksumError(RuntimeError):
  """The downloaded wheel is not the pinned one (its sha256 differs)."""


def default_cache_dir() -> pathlib.Path:
  return registry.cache_root() / f'pose2sim-{POSE2SIM_VERSION}'


def _download(folder: pathlib.Path) -> pathlib.Path:
  """pip-downloads the pinned wheel into `folder`; its path, or DemoFetchError."""
  how = (f'Check the network connection to PyPI (or your index: PIP_INDEX_URL, pip.conf), '
         f'or download {WHEEL_NAME} elsewhere (pip download pose2sim=={POSE2SIM_VERSION} '
         '--no-deps) and pass it with --wheel=PATH (demo_capture_dir(wheel=PATH)).')
  return registry.pip_download(f'pose2sim=={POSE2SIM_VERSION}', folder, error=DemoFetchError,
                               how=how, timeout=600)


def _wanted(member: str) -> bool:
  parts = member.split('/')
  if member.startswith('/') or '..' in parts or member.endswith('/'):
    return False
  if len(parts) >= 3 and parts[0] == 'Pose2Sim' and parts[1].startswith('Demo_'):
    return True
  return (len(parts) == 3 and parts[:2] == ['Pose2Sim', 'OpenSim_Setup']
          and member.endswith('.osim'))


def _extract(wheel: pathlib.Path, cache_dir: pathlib.Path) -> None:
  """Extracts the demo members of `wheel` into a new `cache_dir`, atomically."""
  cache_dir.parent.mkdir(parents=True, exist_ok=True)
  tmp = pathlib.Path(tempfile.mkdtemp(prefix=f'.{cache_dir.name}-', dir=cache_dir.parent))
  try:
    with zipfile.ZipFile(wheel) as archive:
      for member in archive.namelist():
        if _wanted(member):
          archive.extract(member, tmp)
        elif member.endswith('.dist-info/licenses/LICENSE'):
          (tmp / 'LICENSE').write_bytes(archive.read(member))
    (tmp / _MARKER).write_text(f'{WHEEL_SHA256}  {WHEEL_NAME}\n')
    tmp.chmod(0o755)   # mkdtemp makes it private
    try:
      os.rename(tmp, cache_dir)
    except OSError:
      if not (cache_dir / _MARKER).is_file():   # not another process finishing first
        raise
  finally:
    shutil.rmtree(tmp, ignore_errors=True)


def demo_capture_dir(name: str = 'Demo_SinglePerson', cache_dir=None, *,
                     wheel=None) -> pathlib.Path:
  """The folder `<cache_dir>/Pose2Sim/<name>` of a Pose2Sim demo, fetched on first use.

  name: 'Demo_SinglePerson', 'Demo_MultiPerson' or 'Demo_Batch'. cache_dir: see the module
  docstring. wheel: an already-downloaded pose2sim wheel to use instead of pip (checked
  against the same sha256). Raises DemoFetchError when the wheel cannot be downloaded,
  DemoChecksumError when it is not the pinned one, ValueError for an unknown name.
  """
  cache_dir = default_cache_dir() if cache_dir is None else pathlib.Path(cache_dir)
  cache_dir = cache_dir.expanduser().resolve()
  if cache_dir.exists() and not (cache_dir / _MARKER).is_file():
    raise FileExistsError(f'{cache_dir} exists but is not an extraction of {WHEEL_NAME} '
                          f'(no {_MARKER}); delete it or choose another --cache_dir')
  if not cache_dir.exists():
    with tempfile.TemporaryDirectory(prefix='banet-pose2sim-') as tmp:
      path = pathlib.Path(wheel) if wheel is not None else _download(pathlib.Path(tmp))
      if not path.is_file():
        raise DemoFetchError(f'wheel {path}: no such file')
      digest = registry.sha256(path)
      if digest != WHEEL_SHA256:
        raise DemoChecksumError(
            f'{path} has sha256 {digest}, not the pinned {WHEEL_SHA256} of {WHEEL_NAME}: '
            'the file is corrupt or not that release (your package index may serve another '
            'build); download it again from pypi.org')
      _extract(path, cache_dir)
  folder = cache_dir / 'Pose2Sim' / name
  if not folder.is_dir():
    names = sorted(p.name for p in (cache_dir / 'Pose2Sim').glob('Demo_*'))
    raise ValueError(f'no Pose2Sim demo {name!r}; the wheel has {names}')
  return folder


def main(argv=None) -> None:
  parser = argparse.ArgumentParser(
      prog='python -m banet_jax.capture.demo',
      description=f'Fetch a Pose2Sim {POSE2SIM_VERSION} demo capture (BSD-3-Clause) from '
                  'PyPI into a cache and print its folder.')
  parser.add_argument('--name', default='Demo_SinglePerson',
                      help='Demo_SinglePerson (default), Demo_MultiPerson or Demo_Batch')
  parser.add_argument('--cache_dir', default=None,
                      help=f'default ${CACHE_ENV}/pose2sim-{POSE2SIM_VERSION} or '
                           f'~/.cache/banet_jax/pose2sim-{POSE2SIM_VERSION}')
  parser.add_argument('--wheel', default=None,
                      help=f'use this downloaded {WHEEL_NAME} instead of pip')
  args = parser.parse_args(argv)
  try:
    folder = demo_capture_dir(args.name, args.cache_dir, wheel=args.wheel)
  except (DemoFetchError, DemoChecksumError, FileExistsError, ValueError) as e:
    sys.exit(f'error: {e}')
  print(folder)


if __name__ == '__main__':
  main()
