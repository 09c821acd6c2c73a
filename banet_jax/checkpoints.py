"""Training checkpoints: an orbax `CheckpointManager` over `<workdir>/checkpoints/<step>/`.

Each checkpoint holds three items:
  state   the train state pytree {'step', 'params', 'opt_state'} (orbax StandardSave);
  data    the input iterator's state (JSON), so a resumed run sees the same batches;
  config  the run's configuration (JSON), checked before anything is restored.
Saves are asynchronous (the device-to-host copy is synchronous, the writes are not) and
atomic (orbax writes a temporary directory and renames it when complete), so a killed
run leaves either a complete checkpoint or none.
"""

from __future__ import annotations

import pathlib
from typing import Any

import jax
import numpy as np
import orbax.checkpoint as ocp

STATE, DATA, CONFIG = 'state', 'data', 'config'


class CheckpointError(RuntimeError):
  """A checkpoint cannot be found, read or restored."""


def resolve(path: str | pathlib.Path) -> tuple[pathlib.Path, int]:
  """A workdir, its `checkpoints/` folder or one step folder -> (checkpoints dir, step).

  A workdir or checkpoints folder resolves to its latest complete checkpoint.
  """
  path = pathlib.Path(path).expanduser()
  if not path.exists():
    raise CheckpointError(f'no such checkpoint or workdir: {path}')
  if path.name.isdigit() and (path / CONFIG).is_dir():
    return path.parent, int(path.name)
  folder = path / 'checkpoints' if (path / 'checkpoints').is_dir() else path
  steps = sorted(int(p.name) for p in folder.iterdir()
                 if p.is_dir() and p.name.isdigit() and (p / CONFIG).is_dir())
  if not steps:
    raise CheckpointError(f'no complete checkpoint under {path} (expected a training workdir, '
                          'its checkpoints/ folder, or a checkpoints/<step> folder)')
  return folder, steps[-1]


class Checkpoints:
  """Save and restore train states, iterator states and configs in one folder."""

  def __init__(self, directory: str | pathlib.Path, *, keep: int = 3, async_save: bool = True,
               read_only: bool = False):
    if keep < 1:
      raise ValueError(f'keep must be >= 1, got {keep}')
    self.directory = pathlib.Path(directory).expanduser().absolute()
    options = ocp.CheckpointManagerOptions(
        max_to_keep=keep,
        enable_async_checkpointing=async_save, create=not read_only, read_only=read_only,
        # A run killed mid-save leaves a temporary folder; drop it on the next start.
        cleanup_tmp_directories=not read_only)
    self._manager = ocp.CheckpointManager(self.directory, options=options, item_handlers={
        STATE: ocp.StandardCheckpointHandler(), DATA: ocp.JsonCheckpointHandler(),
        CONFIG: ocp.JsonCheckpointHandler()})

  def steps(self) -> list[int]:
    return sorted(self._manager.all_steps())

  def latest_step(self) -> int | None:
    return self._manager.latest_step()

  def read_config(self, step: int) -> dict[str, Any]:
    """The config stored with checkpoint `step`."""
    try:
      return dict(self._manager.restore(step, args=ocp.args.Composite(
          **{CONFIG: ocp.args.JsonRestore()}))[CONFIG])
    except Exception as e:  # pylint: disable=broad-except  (orbax raises many kinds)
      raise CheckpointError(self._unreadable(step, e)) from e

  def save(self, step: int, state, data_state: dict, config: dict) -> None:
    """Starts saving checkpoint `step` (returns once the state is copied to host)."""
    if step in self._manager.all_steps():
      return
    self._manager.save(step, args=ocp.args.Composite(**{
        STATE: ocp.args.StandardSave(state), DATA: ocp.args.JsonSave(data_state),
        CONFIG: ocp.args.JsonSave(config)}), force=True)

  def restore(self, step: int, abstract_state) -> tuple[Any, dict]:
    """(state, data_state) of checkpoint `step`.

    Args:
      step: which checkpoint.
      abstract_state: pytree of `jax.ShapeDtypeStruct` (with shardings) of the state.
    """
    try:
      out = self._manager.restore(step, args=ocp.args.Composite(**{
          STATE: ocp.args.StandardRestore(abstract_state), DATA: ocp.args.JsonRestore()}))
    except Exception as e:  # pylint: disable=broad-except
      raise CheckpointError(self._unreadable(step, e)) from e
    return out[STATE], dict(out[DATA])

  def restore_params(self, step: int, abstract_state):
    """Only `state['params']` of checkpoint `step` (abstract_state as in `restore`)."""
    return self.restore(step, abstract_state)[0]['params']

  def saved_shapes(self, step: int):
    """The state pytree of checkpoint `step` as ShapeDtypeStructs on the first device."""
    try:
      metadata = self._manager.item_metadata(step)[STATE]
    except Exception as e:  # pylint: disable=broad-except
      raise CheckpointError(self._unreadable(step, e)) from e
    return abstract_like(metadata, jax.sharding.SingleDeviceSharding(jax.devices()[0]))

  def _unreadable(self, step: int, error: Exception) -> str:
    others = [s for s in self.steps() if s != step]
    detail = ' '.join(str(error).split())[:300]
    hint = (f'move {self.directory / str(step)} away to resume from step {others[-1]}'
            if others else 'start again with a new --workdir')
    return (f'checkpoint {step} in {self.directory} cannot be read; it is corrupt or '
            f'incomplete ({type(error).__name__}: {detail}). Other checkpoints: '
            f'{others or "none"}; {hint}.')

  def wait(self) -> None:
    """Blocks until pending asynchronous saves are committed."""
    self._manager.wait_until_finished()

  def close(self) -> None:
    self._manager.wait_until_finished()
    self._manager.close()


def abstract_like(tree, sharding=None):
  """ShapeDtypeStructs of `tree` (arrays or ShapeDtypeStructs), optionally with a sharding."""
  return jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=sharding), tree)


def load(path: str | pathlib.Path) -> tuple[Any, dict, int]:
  """(state with numpy leaves, config dict, step) of a workdir's latest or a given checkpoint.

  For inspection and inference; works whatever devices the run was saved from.
  """
  folder, step = resolve(path)
  checkpoints = Checkpoints(folder, read_only=True)
  try:
    config = checkpoints.read_config(step)
    state, _ = checkpoints.restore(step, checkpoints.saved_shapes(step))
  finally:
    checkpoints.close()
  return jax.tree.map(np.asarray, state), config, step
