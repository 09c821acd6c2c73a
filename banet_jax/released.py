"""Trained BANet models shipped with the project, and how a run becomes one.

A release is a folder of three files:
  release.json     what it is: name, the run's TrainConfig (JSON), training step, the
                   dataset, storage dtype, sha256 of params.msgpack, and the figures of
                   its model card (MODEL_CARD.md)
  params.msgpack   the network parameters (flax msgpack; float16 on disk: half the size,
                   and the predictions move by far less than the model's error, see
                   tests/test_released.py)
  README.md        a pointer to the model card

`banet_jax/released/<name>/` holds the shipped ones; `DEFAULT_MODEL` names the one that
`launch.predict` and the Colab notebook use when no --checkpoint is given. A new user thus
goes from videos to a .mot with no training. `Predictor.restore` reads a release folder
like a training workdir.

    python -m banet_jax.released --run=runs/lab15_tiny_s2_from_s0 --name=odah_lab15_tiny  # export
"""

from __future__ import annotations

import hashlib
import json
import pathlib
from typing import Any

from absl import app
from absl import flags
import flax.serialization
import jax
import numpy as np

from banet_jax import checkpoints

RELEASED_DIR = pathlib.Path(__file__).resolve().parent / 'released'
DEFAULT_MODEL = 'odah_lab15_tiny'
RELEASE_FILE = 'release.json'
PARAMS_FILE = 'params.msgpack'
STORAGE_DTYPES = ('float16', 'float32')


class ReleaseError(RuntimeError):
  """A release folder is missing, incomplete or does not match its checksum."""


def is_release(path: str | pathlib.Path) -> bool:
  """Whether `path` is a release folder (holds release.json)."""
  return (pathlib.Path(path).expanduser() / RELEASE_FILE).is_file()


def default_model_path() -> pathlib.Path:
  """The folder of the shipped default model."""
  return RELEASED_DIR / DEFAULT_MODEL


def resolve(path: str | pathlib.Path | None) -> pathlib.Path:
  """None, '' or 'default' -> the default model; a release name -> its folder; else `path`."""
  if path in (None, '', 'default'):
    path = default_model_path()
  elif (RELEASED_DIR / str(path) / RELEASE_FILE).is_file():
    path = RELEASED_DIR / str(path)
  return pathlib.Path(path).expanduser()


def _sha256(data: bytes) -> str:
  return hashlib.sha256(data).hexdigest()


def load_release(path: str | pathlib.Path) -> tuple[Any, dict, dict]:
  """(params with float32 numpy leaves, TrainConfig JSON, release info) of a release."""
  folder = resolve(path)
  info_path, params_path = folder / RELEASE_FILE, folder / PARAMS_FILE
  if not info_path.is_file() or not params_path.is_file():
    raise ReleaseError(f'{folder} is not a complete release: it needs {RELEASE_FILE} and '
                       f'{PARAMS_FILE} (export one with `python -m banet_jax.released '
                       '--run=WORKDIR --name=NAME`)')
  info = json.loads(info_path.read_text())
  blob = params_path.read_bytes()
  if _sha256(blob) != info.get('params_sha256'):
    raise ReleaseError(f'{params_path} does not match the sha256 in {info_path}: the file is '
                       'damaged or was replaced; restore it from the repository (git checkout)')
  params = flax.serialization.msgpack_restore(blob)
  params = jax.tree.map(lambda x: np.asarray(x, np.float32), params)
  return params, info['train_config'], info


def export_release(run: str | pathlib.Path, out_dir: str | pathlib.Path, *, name: str,
                   storage_dtype: str = 'float16', card: dict | None = None) -> pathlib.Path:
  """Writes the release of a training run's latest checkpoint (or a `checkpoints/<step>`).

  Args:
    run: training workdir or checkpoint folder.
    out_dir: the release folder (created; existing files are replaced).
    name: the release name (recorded).
    storage_dtype: 'float16' (default) or 'float32' on disk; loading gives float32.
    card: figures to record (e.g. {'odah_test_mae_deg': 5.1, ...}).
  Returns the folder.
  """
  if storage_dtype not in STORAGE_DTYPES:
    raise ValueError(f'storage_dtype must be one of {STORAGE_DTYPES}, got {storage_dtype!r}')
  state, config, step = checkpoints.load(run)
  params = jax.tree.map(lambda x: np.asarray(x, storage_dtype), state['params'])
  big = max(float(np.abs(np.asarray(x, np.float32)).max()) for x in jax.tree.leaves(params))
  if not np.isfinite(big):
    raise ReleaseError(f'{run}: a parameter does not fit {storage_dtype} (max |w| overflows); '
                       "export with storage_dtype='float32'")
  blob = flax.serialization.msgpack_serialize(params)
  out = pathlib.Path(out_dir).expanduser()
  out.mkdir(parents=True, exist_ok=True)
  (out / PARAMS_FILE).write_bytes(blob)
  info = {'name': name, 'step': int(step), 'dataset': config.get('dataset'),
          'preset': config.get('preset'), 'stage': config.get('stage'),
          'storage_dtype': storage_dtype, 'params_sha256': _sha256(blob),
          'num_parameters': int(sum(np.size(x) for x in jax.tree.leaves(params))),
          'card': card or {}, 'train_config': config}
  (out / RELEASE_FILE).write_text(json.dumps(info, indent=1, sort_keys=True) + '\n')
  (out / 'README.md').write_text(
      f'# {name}\n\nA BANet release of banet-jax (`banet_jax/released.py`): '
      f'{info["num_parameters"]:,} parameters, preset `{info["preset"]}`, stage '
      f'{info["stage"]}, trained on `{info["dataset"]}` for {step} steps'
      + (f' from `{config["init_from"]}`' if config.get('init_from') else '')
      + '. What it was trained on, how, and how well it does: MODEL_CARD.md at the '
      'repository root.\n')
  return out


def main(argv):
  del argv
  f = flags.FLAGS
  card = json.loads(f.card) if f.card else None
  out = export_release(f.run, f.out_dir or RELEASED_DIR / f.name, name=f.name,
                       storage_dtype=f.storage_dtype, card=card)
  print(f'wrote {out}')


if __name__ == '__main__':
  flags.DEFINE_string('run', None, 'Training workdir or checkpoint folder.', required=True)
  flags.DEFINE_string('name', DEFAULT_MODEL, 'Release name.')
  flags.DEFINE_string('out_dir', None, 'Release folder (default banet_jax/released/NAME).')
  flags.DEFINE_enum('storage_dtype', 'float16', list(STORAGE_DTYPES), 'On-disk dtype.')
  flags.DEFINE_string('card', None, 'JSON object of figures to record.')
  app.run(main)
