"""Files from the package registry: pinned wheels fetched with pip, checked, cached.

The real-capture front end needs files that only a package registry may provide here and
on users' machines (the Pose2Sim demo trial, the BlazePose models of the mediapipe wheel).
They are downloaded with the running interpreter's pip (`pip_download`), checked against
pinned SHA256 digests (`sha256`) and kept under `cache_root()`:
`$BANET_CACHE_DIR`, else `~/.cache/banet_jax`.
"""

from __future__ import annotations

import hashlib
import os
import pathlib
import subprocess
import sys
from collections.abc import Sequence

CACHE_ENV = 'BANET_CACHE_DIR'


def cache_root() -> pathlib.Path:
  """`$BANET_CACHE_DIR`, else `~/.cache/banet_jax`."""
  root = os.environ.get(CACHE_ENV)
  return pathlib.Path(root).expanduser() if root else pathlib.Path.home() / '.cache' / 'banet_jax'


def sha256(path: str | os.PathLike) -> str:
  """Hex SHA256 of a file, read in 1 MiB blocks."""
  digest = hashlib.sha256()
  with open(path, 'rb') as f:
    for block in iter(lambda: f.read(1 << 20), b''):
      digest.update(block)
  return digest.hexdigest()


def pip_download(requirement: str, folder: pathlib.Path, *, extra: Sequence[str] = (),
                 error: type[Exception] = RuntimeError, how: str = '',
                 timeout: float = 900) -> pathlib.Path:
  """`pip download REQUIREMENT --no-deps --only-binary=:all:` into `folder`; the wheel's path.

  Raises `error` (with pip's last lines and `how`, what the user can do instead) when pip
  cannot run or cannot download it, e.g. without network.
  """
  name = requirement.split('=')[0].strip()
  cmd = [sys.executable, '-m', 'pip', 'download', requirement, '--no-deps', '--only-binary=:all:',
         *extra, '--disable-pip-version-check', '-q', '-d', str(folder)]
  try:
    result = subprocess.run(cmd, capture_output=True, text=True, check=False, timeout=timeout)
  except (OSError, subprocess.TimeoutExpired) as e:
    raise error(f'could not run pip to download {requirement} ({e}). {how}') from e
  wheels = sorted(pathlib.Path(folder).glob(f'{name.replace("-", "_")}-*.whl')) + sorted(
      pathlib.Path(folder).glob(f'{name}-*.whl'))
  if result.returncode != 0 or not wheels:
    tail = '\n'.join((result.stderr or result.stdout).strip().splitlines()[-5:])
    raise error(f'pip could not download {requirement} (exit {result.returncode}):\n{tail}\n{how}')
  return wheels[0]
