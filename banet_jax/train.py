"""BANet training: optimiser, data-parallel steps and the loop.

    from banet_jax.run_config import TrainConfig
    from banet_jax.train import train_and_evaluate
    train_and_evaluate(TrainConfig(dataset='synthetic', num_steps=10), '/tmp/run')

The run's configuration (`TrainConfig`, its data, what checkpoints record) is defined in
`banet_jax.run_config`.

Stage 1 trains `BANetFrame` on two-view frames; stage 2 trains `BANetSequence` on
chunks, starting its 'frame' parameters from a stage-1 checkpoint (`init_from`) and, as
the official code, never updating the hourglass encoder, its 1x1 heads and
`to_one_scales` (`freeze='auto'`). The loss is the official one
(`banet_jax.losses.banet_losses`, on the refined outputs in stage 2).

Optimiser: Adam(b1, b2) with a learning rate constant for `constant_steps`, then cosine
decay to `final_learning_rate` over `decay_steps` (official: 50 + 50 epochs, 5e-5 ->
1e-7), optional global-norm clipping; frozen parameters get no gradient
(`stop_gradient`) and no update (`optax.set_to_zero` in an `optax.multi_transform`).

Data parallelism, both averaging gradients over the global batch (so N devices give
what one device gives on the same global batch, up to float rounding):
  * 'jit' (default): a 1-D `Mesh` over all devices, the batch sharded on its 'data'
    axis (`NamedSharding`), the state replicated; XLA inserts the gradient all-reduce.
  * 'pmap': `jax.pmap` over the local devices with `lax.pmean` of gradients and losses.
Multi-host (`multihost=True`) calls `jax.distributed.initialize()` first; every process
loads its slice of each global batch.

The loop (`train_and_evaluate`) resumes from the latest checkpoint of the workdir
(state and input iterator, so the resumed run is the uninterrupted one), refuses a
workdir whose checkpoint has an incompatible config or was trained with another OpenSim
model (`run_config.check_run_model`; data of another model are refused by the reader), saves every `checkpoint_every`
steps and on SIGTERM (then returns cleanly), stops on a non-finite loss or gradient
without saving it, and logs to `metrics.jsonl`, TensorBoard and stdout.
"""

from __future__ import annotations

import collections
import dataclasses
import datetime
import functools
import json
import pathlib
import signal
import threading
import time
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

from banet_jax import checkpoints as ckpt_lib
from banet_jax import data
from banet_jax import losses
from banet_jax import released
from banet_jax.metric_writers import MetricWriter
from banet_jax.model.banet import BANet
from banet_jax.model.outputs import decode
from banet_jax.run_config import OSIM_KEY, TrainConfig, check_run_model, run_record

# BANetConfig fields that say how to compute, not what: a resume or an `init_from` may
# change them.
_COMPUTE_FIELDS = ('compute_dtype', 'remat')
# Model fields that may differ between the checkpoint a run starts from (`init_from`) and
# the run: the temporal module's, and the compute fields.
_TEMPORAL_FIELDS = ('chunk_length', 'temporal_dim', 'temporal_blocks', 'temporal_heads',
                    'ffn_expansion_factor') + _COMPUTE_FIELDS


class TrainingError(RuntimeError):
  """Training cannot go on (the message says why and what to do)."""


class NonFiniteError(TrainingError):
  """A non-finite loss or gradient; nothing was saved for that step."""


class IncompatibleCheckpointError(TrainingError):
  """The workdir (or init_from) holds a checkpoint of an incompatible configuration."""


# --------------------------------------------------------------------------- optimiser


def learning_rate_schedule(config: TrainConfig) -> optax.Schedule:
  """Constant for `constant_steps`, then cosine decay to `final_learning_rate`."""
  lr = config.learning_rate
  if config.decay_steps == 0:
    return optax.constant_schedule(lr)
  constant = config.num_steps if config.constant_steps is None else config.constant_steps
  cosine = optax.cosine_decay_schedule(lr, config.decay_steps,
                                       alpha=config.final_learning_rate / lr)
  return optax.join_schedules([optax.constant_schedule(lr), cosine], [constant])


def parameter_name(path) -> str:
  """'frame/image_filter/...' for a pytree key path."""
  return '/'.join(str(getattr(k, 'key', getattr(k, 'name', k))) for k in path)


def trainable_mask(params, frozen: tuple[str, ...]):
  """Pytree of bools: False for parameters under any of the `frozen` path prefixes."""
  names = [parameter_name(p) for p, _ in jax.tree_util.tree_flatten_with_path(params)[0]]
  for prefix in frozen:
    if not any(n == prefix or n.startswith(prefix + '/') for n in names):
      tops = sorted({'/'.join(n.split('/')[:2]) for n in names})
      raise ValueError(f'freeze prefix {prefix!r} matches no parameter; parameters start '
                       f'with {tops}')
  return jax.tree_util.tree_map_with_path(
      lambda p, _: not any(parameter_name(p) == f or parameter_name(p).startswith(f + '/')
                           for f in frozen), params)


def make_optimizer(config: TrainConfig, mask) -> optax.GradientTransformation:
  """Adam (+ optional clipping) on trainable parameters, nothing on frozen ones."""
  inner = optax.adam(learning_rate_schedule(config), b1=config.b1, b2=config.b2)
  if config.grad_clip_norm:
    inner = optax.chain(optax.clip_by_global_norm(config.grad_clip_norm), inner)
  if all(jax.tree.leaves(mask)):
    return inner
  labels = jax.tree.map(lambda m: 'train' if m else 'frozen', mask)
  return optax.multi_transform({'train': inner, 'frozen': optax.set_to_zero()}, labels)


# ------------------------------------------------------------------------ state, steps


class Task:
  """The network, loss and optimiser of one config; pure step functions on pytrees."""

  def __init__(self, config: TrainConfig):
    self.config = config
    self.net = BANet.create(config.model_config())
    self.loss_config = config.loss_config()
    shapes = jax.eval_shape(self._init_params, jax.random.key(0))
    self.mask = trainable_mask(shapes, config.frozen_prefixes())
    self.optimizer = make_optimizer(config, self.mask)
    self.schedule = learning_rate_schedule(config)

  @property
  def frames_per_example(self) -> int:
    return 1 if self.config.stage == 1 else self.net.config.chunk_length

  def _init_params(self, rng):
    init = self.net.init_frame if self.config.stage == 1 else self.net.init_sequence
    return init(rng)['params']

  def init_state(self, rng, frame_params=None) -> dict:
    """{'step', 'params', 'opt_state'}; `frame_params` replaces params['frame']."""
    params = self._init_params(rng)
    if frame_params is not None:
      params = dict(params, frame=frame_params)
    return {'step': jnp.zeros((), jnp.int32), 'params': params,
            'opt_state': self.optimizer.init(params)}

  def abstract_state(self):
    return jax.eval_shape(self.init_state, jax.random.key(0))

  def loss(self, params, batch):
    """Total loss and the dict of terms for one batch (see banet_jax.data for keys)."""
    params = jax.tree.map(lambda p, m: p if m else jax.lax.stop_gradient(p), params, self.mask)
    inputs = (batch['images'], batch['crop_pixels'], batch['query_points'])
    if self.config.stage == 1:
      raw = self.net.frame.apply({'params': params}, *inputs)
    else:
      _, raw = self.net.sequence.apply({'params': params}, *inputs)
    coords, scales = decode(self.net.layout, raw)
    terms = losses.banet_losses(self.net.layout, coords, scales, batch['coordinates'],
                                batch['scales'], self.loss_config, gt_points=batch['points'])
    return terms['total'], terms

  def gradients(self, params, batch):
    """(loss terms, gradients) of one device's batch: at once, or with `micro_batch` as
    the mean over micro-batches run one after another (a `lax.scan` whose carry is the
    sum, so only one micro-batch's activations are alive at a time). Every loss term is a
    mean over the batch, so both give the same numbers up to float rounding."""
    size, micro = batch['images'].shape[0], self.config.micro_batch
    if not micro or micro >= size:
      return self._terms_and_gradients(params, batch)
    if size % micro:
      raise ValueError(f'micro_batch {micro} does not divide the batch of {size} this step sees')
    count = size // micro
    split = self._micro_split(batch, count)

    def accumulate(total, one):
      return jax.tree.map(jnp.add, total, self._terms_and_gradients(params, one)), None

    first = jax.tree.map(lambda x: x[0], split)
    zeros = jax.tree.map(lambda a: jnp.zeros(a.shape, a.dtype),
                         jax.eval_shape(lambda b: self._terms_and_gradients(params, b), first))
    (terms, grads), _ = jax.lax.scan(accumulate, zeros, split)
    return jax.tree.map(lambda x: x / count, (terms, grads))

  @staticmethod
  def _micro_split(batch, count: int):
    """The batch as (count, B / count, ...): micro-batch j holds examples j, j + count, ...;
    strided, so each micro-batch spans the devices a 'jit'-sharded batch lives on."""
    return jax.tree.map(lambda x: jnp.swapaxes(
        x.reshape((x.shape[0] // count, count) + x.shape[1:]), 0, 1), batch)

  def micro_gradients(self, params, batch, index):
    """(loss terms, gradients) of micro-batch `index` (a traced int) of the batch, for
    `micro_batch_loop='host'` (`HostMicroBatchStep`)."""
    count = batch['images'].shape[0] // self.config.micro_batch
    return self._terms_and_gradients(
        params, jax.tree.map(lambda x: x[index], self._micro_split(batch, count)))

  def _terms_and_gradients(self, params, batch):
    """(loss terms, gradients with respect to params) of one forward/backward pass."""
    (_, terms), grads = jax.value_and_grad(self.loss, has_aux=True)(params, batch)
    return terms, grads

  def train_step(self, state, batch, axis_name: str | None = None):
    """One update; returns (new state, metrics of this step)."""
    terms, grads = self.gradients(state['params'], batch)
    return self.apply_gradients(state, terms, grads, axis_name)

  def apply_gradients(self, state, terms, grads, axis_name: str | None = None):
    """The update of one step from its (batch-mean) loss terms and gradients."""
    if axis_name is not None:
      grads, terms = jax.lax.pmean((grads, terms), axis_name)
    updates, opt_state = self.optimizer.update(grads, state['opt_state'], state['params'])
    params = optax.apply_updates(state['params'], updates)
    grad_norm = optax.tree.norm(grads)
    metrics = {f'loss/{k}': v for k, v in terms.items()}
    metrics['grad_norm'] = grad_norm
    metrics['learning_rate'] = jnp.asarray(self.schedule(state['step']), jnp.float32)
    metrics['finite'] = jnp.isfinite(terms['total']) & jnp.isfinite(grad_norm)
    return {'step': state['step'] + 1, 'params': params, 'opt_state': opt_state}, metrics

  def eval_step(self, params, batch, axis_name: str | None = None):
    """The loss terms of one batch (no update)."""
    _, terms = self.loss(params, batch)
    if axis_name is not None:
      terms = jax.lax.pmean(terms, axis_name)
    return {f'loss/{k}': v for k, v in terms.items()}


class Parallel:
  """Placement of states and batches, and compiled steps, for 'jit' or 'pmap'."""

  def __init__(self, mode: str, global_batch: int):
    """mode: 'jit' or 'pmap'; global_batch must split evenly over all devices."""
    self.mode = mode
    if mode == 'jit':
      self.mesh = Mesh(np.asarray(jax.devices()), ('data',))
      self.replicated = NamedSharding(self.mesh, P())
      self.batch_sharding = NamedSharding(self.mesh, P('data'))
      devices = jax.device_count()
    else:
      self.devices = jax.local_devices()
      devices = len(self.devices) * jax.process_count()
    if global_batch % devices:
      raise ValueError(f'global batch {global_batch} is not divisible by the {devices} devices')

  def abstract(self, abstract_state):
    """Restore targets: replicated on the mesh (jit) or on the first local device (pmap)."""
    sharding = (self.replicated if self.mode == 'jit'
                else jax.sharding.SingleDeviceSharding(jax.local_devices()[0]))
    return ckpt_lib.abstract_like(abstract_state, sharding)

  def init(self, fn: Callable, *args):
    """Runs `fn(*args)` (a state constructor) and places the result."""
    if self.mode == 'jit':
      return jax.jit(fn, out_shardings=self.replicated)(*args)
    return self.place_state(jax.jit(fn)(*args))

  def place_state(self, state):
    if self.mode == 'jit':
      return jax.device_put(state, self.replicated)
    # One copy per local device along a leading axis, as pmap expects.
    n = len(self.devices)
    stacked = NamedSharding(Mesh(np.asarray(self.devices), ('data',)), P('data'))
    return jax.tree.map(lambda x: jax.device_put(jnp.broadcast_to(x, (n,) + x.shape), stacked),
                        state)

  def saveable(self, state):
    """The state as one (replicated or single-device) copy, for checkpoints."""
    return self.first(state)

  def first(self, tree):
    """One copy of per-device outputs (pmap's leading device axis dropped)."""
    if self.mode == 'jit':
      return tree
    # One compiled gather for the whole tree, not one small program per leaf shape.
    return _first_copy(tree)

  def place_batch(self, batch: dict):
    """This process's slice of the global batch -> device arrays."""
    if self.mode == 'jit':
      return {k: jax.make_array_from_process_local_data(self.batch_sharding, v)
              for k, v in batch.items()}
    n = len(self.devices)
    return {k: v.reshape((n, v.shape[0] // n) + v.shape[1:]) for k, v in batch.items()}

  def compile_train(self, task: Task):
    if self.mode == 'jit' and task.config.micro_batch and task.config.micro_batch_loop == 'host':
      return HostMicroBatchStep(task, self)
    if self.mode == 'jit':
      return jax.jit(task.train_step, in_shardings=(self.replicated, self.batch_sharding),
                     out_shardings=(self.replicated, self.replicated), donate_argnums=0)
    return jax.pmap(functools.partial(task.train_step, axis_name='data'), axis_name='data',
                    devices=self.devices, donate_argnums=0)

  def compile_eval(self, task: Task):
    if self.mode == 'jit':
      return jax.jit(task.eval_step, in_shardings=(self.replicated, self.batch_sharding),
                     out_shardings=self.replicated)
    return jax.pmap(functools.partial(task.eval_step, axis_name='data'), axis_name='data',
                    devices=self.devices)


class HostMicroBatchStep:
  """The training step of `micro_batch_loop='host'` ('jit' parallelism): one compiled
  gradient call per micro-batch from a Python loop, the sums in a compiled add, then the
  compiled update; the same update as `Task.train_step` (tests/test_train.py).

  Why not the scan of `Task.gradients`: XLA:CPU runs a loop body's convolutions far slower
  than the same ops at top level (a paper-size B=2 step with micro_batch=1 took over 2 min
  in a scan, 72.6 s without micro-batches), and an unrolled scan keeps every micro-batch's
  activations alive (8.33 GiB against 8.05 for the whole batch). Separate calls run each
  micro-batch at the speed and memory of a step of that size: 51.0 s and 4.98 GiB against
  73.2 s and 7.33 GiB (benchmarks/README.md, `frame_profile.py` section, "Micro-batches
  from the host").
  """

  def __init__(self, task: Task, parallel: 'Parallel'):
    rep, data_sharding = parallel.replicated, parallel.batch_sharding
    self.task = task
    self._grads = jax.jit(task.micro_gradients, in_shardings=(rep, data_sharding, None),
                          out_shardings=rep)
    self._add = jax.jit(lambda a, b: jax.tree.map(jnp.add, a, b), donate_argnums=0,
                        out_shardings=rep)
    self._apply = jax.jit(self._mean_update, static_argnums=3, donate_argnums=0,
                          out_shardings=(rep, rep))

  def _mean_update(self, state, terms, grads, count: int):
    terms, grads = jax.tree.map(lambda x: x / count, (terms, grads))
    return self.task.apply_gradients(state, terms, grads)

  def __call__(self, state, batch):
    count = batch['images'].shape[0] // self.task.config.micro_batch
    total = None
    for index in range(count):
      part = self._grads(state['params'], batch, jnp.asarray(index, jnp.int32))
      total = part if total is None else self._add(total, part)
    return self._apply(state, *total, count)


@jax.jit
def _first_copy(tree):
  return jax.tree.map(lambda x: x[0], tree)


# ----------------------------------------------------------------- config bookkeeping


def compatibility_key(config_json: dict) -> dict:
  """What must not change when resuming: stage, model shape and optimiser structure."""
  config = TrainConfig.from_json(config_json)
  model = dataclasses.asdict(config.model_config())
  for name in _COMPUTE_FIELDS:
    model.pop(name)
  return json.loads(json.dumps({
      'stage': config.stage, 'model': model, 'frozen': list(config.frozen_prefixes()),
      'grad_clip': bool(config.grad_clip_norm)}))


def _differences(a: dict, b: dict, prefix: str = '') -> list[str]:
  out = []
  for key in sorted(set(a) | set(b)):
    x, y = a.get(key), b.get(key)
    if isinstance(x, dict) and isinstance(y, dict):
      out += _differences(x, y, f'{prefix}{key}.')
    elif x != y:
      out.append(f'{prefix}{key}: {x!r} -> {y!r}')
  return out


def check_resumable(saved: dict, config: TrainConfig, where: str) -> list[str]:
  """Raises IncompatibleCheckpointError; returns the harmless differences."""
  bad = _differences(compatibility_key(saved), compatibility_key(config.to_json()))
  if bad:
    raise IncompatibleCheckpointError(
        f'{where} holds a checkpoint of an incompatible configuration ({"; ".join(bad)}). '
        'It was left untouched: use a new --workdir for this configuration, or the saved '
        'configuration to resume.')
  return _differences({k: v for k, v in saved.items() if k != OSIM_KEY}, config.to_json())


def load_frame_params(path: str, task: Task):
  """'frame' parameters of a (stage-1 or stage-2) checkpoint or of a release folder or name
  (`banet_jax.released`, e.g. 'default': fine-tuning the shipped model), checked against
  `task`."""
  release = released.resolve(path)
  if released.is_release(release):
    params, record, _ = released.load_release(release)
    where = f'release {release}'
    _check_frame_config(record, task, where)
    frame = jax.tree.map(jnp.asarray, params['frame'])
  else:
    folder, step = ckpt_lib.resolve(path)
    where = f'{folder / str(step)}'
    source = ckpt_lib.Checkpoints(folder, read_only=True)
    try:
      saved = _check_frame_config(source.read_config(step), task, where)
      other = Task(saved)
      abstract = ckpt_lib.abstract_like(other.abstract_state(),
                                        jax.sharding.SingleDeviceSharding(jax.devices()[0]))
      frame = source.restore_params(step, abstract)['frame']
    finally:
      source.close()
  want = jax.eval_shape(task.init_state, jax.random.key(0))['params']['frame']
  shapes = lambda t: jax.tree.map(lambda x: (x.shape, str(x.dtype)), t)
  if shapes(frame) != shapes(want):
    raise IncompatibleCheckpointError(f'init_from {where}: frame parameters '
                                      'have other shapes than this model')
  return frame, where


def _check_frame_config(record: dict, task: Task, where: str) -> TrainConfig:
  """The saved run config of `record`; raises IncompatibleCheckpointError when its model
  or its frame network differs from `task`'s."""
  check_run_model(record, task.net.layout.skeleton, f'init_from {where}')
  saved = TrainConfig.from_json(record)
  mine, theirs = (dataclasses.asdict(c.model_config()) for c in (task.config, saved))
  bad = [f'{k}: {theirs[k]!r} (checkpoint) vs {mine[k]!r}' for k in mine
         if k not in _TEMPORAL_FIELDS and json.dumps(mine[k]) != json.dumps(theirs[k])]
  if bad:
    raise IncompatibleCheckpointError(
        f'init_from {where}: its frame model differs ({"; ".join(bad)})')
  return saved


# -------------------------------------------------------------------------- the loop


class _StopFlag:
  """Set by SIGTERM; the loop saves at the next step boundary and returns."""

  def __init__(self):
    self.signal = None
    self._previous = None

  def __enter__(self):
    if threading.current_thread() is threading.main_thread():
      self._previous = signal.signal(signal.SIGTERM, self._handle)
    return self

  def _handle(self, signum, frame):
    del frame
    self.signal = signum

  def __exit__(self, *exc):
    if self._previous is not None:
      signal.signal(signal.SIGTERM, self._previous)


def _print(message: str) -> None:
  if jax.process_index() == 0:
    print(message, flush=True)


def pipeline_config(config: TrainConfig, task: Task) -> data.PipelineConfig:
  """The input pipeline's settings for a run."""
  c = task.net.config
  return data.PipelineConfig(stage=config.stage, batch_size=config.batch_size,
                             image_size=c.image_size, num_points=c.num_points,
                             chunk_length=c.chunk_length, seed=config.seed,
                             clip_cache=config.clip_cache, point_order=c.point_order,
                             appearance=c.appearance, augment=config.augment)


def _open(config: TrainConfig, task: Task, split: str):
  return config.data.open(split, task.net.layout)


def evaluate(parallel: Parallel, eval_fn, params, dataset, max_batches: int) -> dict:
  """Mean loss terms over up to `max_batches` batches of `dataset` ('val/...' keys)."""
  sums, count = collections.defaultdict(float), 0
  for k in range(min(len(dataset), max_batches)):
    out = jax.device_get(parallel.first(eval_fn(params, parallel.place_batch(dataset[k]))))
    for key, value in out.items():
      sums[key] += float(value)
    count += 1
  return {f'val/{k}': v / count for k, v in sums.items()} if count else {}


def train_and_evaluate(config: TrainConfig, workdir: str | pathlib.Path, *,
                       train_source=None, eval_source=None) -> dict:
  """Trains (resuming from `workdir` if it holds checkpoints); returns a summary.

  Args:
    config: the run.
    workdir: checkpoints/, metrics.jsonl, tensorboard/ and config.json go here.
    train_source, eval_source: random-access sequences of examples replacing the
      configured dataset (tests).

  Returns:
    {'step': last completed step, 'stopped_by': None or 'SIGTERM', 'metrics': the last
    logged scalars}.

  Raises:
    IncompatibleCheckpointError, ckpt_lib.CheckpointError, NonFiniteError, ValueError,
    data.DatasetNotFoundError.
  """
  if config.multihost and not jax.distributed.is_initialized():
    jax.distributed.initialize()  # cluster settings from the environment (SLURM, TPU, ...)
  workdir = pathlib.Path(workdir).expanduser().absolute()
  task = Task(config)
  ckpts = ckpt_lib.Checkpoints(workdir / 'checkpoints', keep=config.keep_checkpoints)
  try:
    return _train(config, workdir, task, ckpts, train_source, eval_source)
  finally:
    ckpts.close()


def _train(config, workdir, task, ckpts, train_source, eval_source) -> dict:
  latest = ckpts.latest_step()
  if latest is not None:  # checked before anything in the workdir is written
    saved = ckpts.read_config(latest)
    changed = check_resumable(saved, config, str(workdir))
    check_run_model(saved, task.net.layout.skeleton, f'checkpoint {latest} in {workdir}')
    _print(f'resuming from checkpoint {latest} in {ckpts.directory}'
           + (f'; changed settings: {", ".join(changed)}' if changed else ''))
  parallel = Parallel(config.parallelism, config.batch_size)

  source = train_source if train_source is not None else _open(config, task, config.train_split)
  pipeline = pipeline_config(config, task)
  train_ds, info = data.train_batches(source, task.net.layout, pipeline,
                                      process_index=jax.process_index(),
                                      process_count=jax.process_count())
  iterator = data.make_iterator(train_ds, config.data_threads, config.prefetch)
  unit = 'frames' if config.stage == 1 else 'chunks'
  _print(f'data: {info["clips"]} clips x {info["frames_per_clip"]} frames = {info["items"]} '
         f'{unit} per epoch, {info["steps_per_epoch"]} steps per epoch at global batch '
         f'{config.batch_size}; {jax.device_count()} devices, parallelism {config.parallelism}')

  if latest is not None:
    state, data_state = ckpts.restore(latest, parallel.abstract(task.abstract_state()))
    state = parallel.place_state(state)
    iterator.set_state(data_state)
    start = latest
    if config.init_from:
      _print(f'init_from {config.init_from} ignored: resuming the run in {workdir}')
  else:
    frame = None
    if config.init_from:
      frame, where = load_frame_params(config.init_from, task)
      _print(f'frame parameters loaded from {where}')
    state = parallel.init(task.init_state, jax.random.key(config.seed), frame)
    start = 0

  if jax.process_index() == 0:  # only once the checkpoint (if any) has been restored
    record = run_record(config, task.net.layout.skeleton)
    (workdir / 'config.json').write_text(json.dumps(record, indent=2) + '\n')
  eval_fn, eval_ds = None, None
  if config.eval_every:
    eval_src = eval_source if eval_source is not None else _open(config, task, config.eval_split)
    eval_ds = data.eval_batches(eval_src, task.net.layout, pipeline,
                                process_index=jax.process_index(),
                                process_count=jax.process_count())
    eval_fn = parallel.compile_eval(task)
  step_fn = parallel.compile_train(task)
  writer = MetricWriter(workdir, latest, enabled=jax.process_index() == 0)
  config_json = run_record(config, task.net.layout.skeleton)
  summary = {'step': start, 'stopped_by': None, 'metrics': {}}
  sums, count = collections.defaultdict(float), 0
  t_start = t_last = time.perf_counter()
  step_last = start
  try:
    with _StopFlag() as stop:
      batch = next(iterator) if start < config.num_steps else None
      for step in range(start, config.num_steps):
        done = step + 1
        if done == config.nan_at_step:
          batch = dict(batch, images=batch['images'] * np.float32(np.nan))
        state, metrics = step_fn(state, parallel.place_batch(batch))
        data_state = iterator.get_state()  # after exactly `done` batches
        if done < config.num_steps:
          batch = next(iterator)  # host work overlaps the device step
        metrics = jax.device_get(parallel.first(metrics))
        if not metrics.pop('finite'):
          ckpts.wait()
          raise NonFiniteError(
              f'non-finite loss or gradients at step {done} (loss/total '
              f'{metrics["loss/total"]}, grad_norm {metrics["grad_norm"]}): training stopped '
              f'and this state was not saved; the last good checkpoint is '
              f'{ckpts.latest_step()} in {ckpts.directory}')
        for key, value in metrics.items():
          sums[key] += float(value)
        count += 1
        if done == start + 1 and done % config.log_every:
          t_last, step_last = time.perf_counter(), done  # keep compilation out of steps/s
        if done % config.log_every == 0 or done == config.num_steps:
          now = time.perf_counter()
          rate = (done - step_last) / max(now - t_last, 1e-9)
          scalars = {k: v / count for k, v in sums.items()}
          scalars.update(steps_per_sec=rate, examples_per_sec=rate * config.batch_size,
                         frames_per_sec=rate * config.batch_size * task.frames_per_example,
                         elapsed_sec=now - t_start)
          writer.write(done, scalars)
          eta = datetime.timedelta(seconds=round((config.num_steps - done) / max(rate, 1e-9)))
          _print(f'step {done}/{config.num_steps}  loss {scalars["loss/total"]:.4f}  '
                 f'lr {scalars["learning_rate"]:.3g}  {rate:.2f} steps/s  '
                 f'{rate * config.batch_size:.1f} {unit}/s  ETA {eta}')
          summary['metrics'] = scalars
          sums, count, t_last, step_last = collections.defaultdict(float), 0, now, done
        if eval_fn is not None and (done % config.eval_every == 0 or done == config.num_steps):
          t_eval = time.perf_counter()
          scalars = evaluate(parallel, eval_fn, state['params'], eval_ds, config.eval_batches)
          if scalars:
            writer.write(done, scalars)
            _print(f'step {done}  validation loss {scalars["val/loss/total"]:.4f}')
          t_last += time.perf_counter() - t_eval  # keep validation out of steps/s
        if (done % config.checkpoint_every == 0 or done == config.num_steps
            or stop.signal is not None):
          ckpts.save(done, parallel.saveable(state), data_state, config_json)
        summary['step'] = done
        if stop.signal is not None:
          ckpts.wait()
          _print(f'SIGTERM: saved checkpoint {done} in {ckpts.directory}; exiting')
          summary['stopped_by'] = 'SIGTERM'
          break
  finally:
    writer.close()
  ckpts.wait()
  return summary
