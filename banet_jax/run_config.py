"""The run configuration: the one definition of a training run, of its data, and of what a
checkpoint records about both.

    from banet_jax.run_config import TrainConfig
    config = TrainConfig(dataset='synthetic', num_steps=10)
    config.data.open('validation', layout)      # which data, answered one way

* `TrainConfig`: every setting of a run, each field with its help text
  (`dataclasses.field(metadata={'help': ...})`). `launch/train.py` derives its absl flags
  from these fields, so a setting is written once; JSON round trips (`to_json`,
  `from_json`) are stored with every checkpoint.
* `DataConfig`: which data, for training, evaluation and prediction alike (a TFDS
  'odah/<config>[:version]' in a data_dir, or 'synthetic' clips with their sizes).
  `TrainConfig.data` is the run's; `DataConfig.override` applies a user's --dataset /
  --data_dir over it.
* `run_record` / `check_run_model`: what a checkpoint stores of its run (the config as
  JSON plus the identity of the network's OpenSim model, `OSIM_KEY`), and the check made
  by everything that restores one.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

from banet_jax import augment
from banet_jax import data
from banet_jax import losses
from banet_jax.model.banet import PRESETS, BANetConfig, get_config
from banet_jax.skeleton import Skeleton, check_same_model

# Official stage-2 freezing: the encoder and its heads (frozen, resp. in no parameter
# group) and `to_one_scales` (in no parameter group either, so never updated).
STAGE2_FROZEN = ('frame/image_filter', 'frame/heads', 'to_one_scales')
# The run record's key for the OpenSim model of the network (`Skeleton.identity()`).
OSIM_KEY = 'osim'


def _field(default, help_text: str, choices=None, **kwargs):
  """A dataclass field with its flag help (and enum choices) in the metadata."""
  metadata = {'help': help_text}
  if choices is not None:
    metadata['choices'] = tuple(choices)
  if isinstance(default, dict):
    return dataclasses.field(default_factory=dict, metadata=metadata, **kwargs)
  return dataclasses.field(default=default, metadata=metadata, **kwargs)


@dataclasses.dataclass(frozen=True)
class DataConfig:
  """Which data: a built TFDS dataset, or generated synthetic clips (no files).

  Attributes:
    dataset: 'odah/<config>' or 'odah/<config>:<version>' (TFDS, built with
      --file_format=array_record), or 'synthetic'.
    data_dir: TFDS data directory (None: $TFDS_DATA_DIR or ~/tensorflow_datasets).
    synthetic_clips, synthetic_frames, synthetic_crop_size: sizes of 'synthetic'.
  """

  dataset: str = 'odah/tiny'
  data_dir: str | None = None
  synthetic_clips: int = 8
  synthetic_frames: int = 32
  synthetic_crop_size: int = 64

  def override(self, dataset: str | None = None, data_dir: str | None = None) -> DataConfig:
    """This config with a user's --dataset / --data_dir where given (None: keep)."""
    return dataclasses.replace(self, dataset=dataset or self.dataset,
                               data_dir=data_dir or self.data_dir)

  def open(self, split: str, layout=None):
    """A random-access source of `split` (`banet_jax.data.open_source`); `layout` (the
    network's OutputLayout) makes synthetic clips and checks the data's OpenSim model when
    the source is read."""
    return data.open_source(self.dataset, split, self.data_dir, layout=layout,
                            synthetic_clips=self.synthetic_clips,
                            synthetic_frames=self.synthetic_frames,
                            synthetic_crop_size=self.synthetic_crop_size)

  def describe(self) -> str:
    return self.dataset + (f' in {self.data_dir}' if self.data_dir else '')


@dataclasses.dataclass(frozen=True)
class TrainConfig:
  """Everything that defines a run (stored as JSON with every checkpoint).

  Each field's metadata holds its help text; `launch/train.py` makes one flag per field.
  """

  # Data (`data` gives them as a DataConfig; defaults are DataConfig's).
  dataset: str = _field(DataConfig.dataset, "'odah/<config>' (TFDS, built with "
                        "--file_format=array_record) or 'synthetic' (generated stick figures; "
                        'no files).')
  data_dir: str | None = _field(DataConfig.data_dir, 'TFDS data directory (default: '
                                '$TFDS_DATA_DIR or ~/tensorflow_datasets).')
  train_split: str = _field('train', 'Training split.')
  eval_split: str = _field('validation', 'Validation split (used when --eval_every > 0).')
  synthetic_clips: int = _field(DataConfig.synthetic_clips,
                                'Clips per split of --dataset=synthetic.')
  synthetic_frames: int = _field(DataConfig.synthetic_frames, 'Frames per synthetic clip.')
  synthetic_crop_size: int = _field(DataConfig.synthetic_crop_size,
                                    'Crop size of synthetic clips.')
  data_threads: int = _field(2, 'Input-pipeline threads (grain).')
  prefetch: int = _field(4, 'Batches prefetched by the input pipeline.')
  clip_cache: int = _field(16, 'Decoded clips kept in memory by the input pipeline.')
  augment: str = _field('none', "Training-time degradations toward real video "
                        "(banet_jax/augment.py): 'real' (segmenter-like masks, exposure, "
                        "noise, blur, JPEG) or 'none'. Validation batches are never degraded.",
                        choices=sorted(augment.PRESETS))
  # Model: a preset of banet_jax.model.banet plus field overrides.
  stage: int = _field(1, '1: per-frame model; 2: temporal model on chunks.')
  preset: str = _field('tiny', 'Network sizes (banet_jax/model/banet.py).',
                       choices=sorted(PRESETS))
  model_overrides: dict = _field({}, 'BANetConfig fields that differ from the preset.')
  # Optimisation (official: Adam(0.5, 0.999), 5e-5 constant then cosine to 1e-7).
  batch_size: int = _field(8, 'Global batch: frames (stage 1) or chunks (stage 2).')
  micro_batch: int = _field(0, 'Examples per forward/backward pass (0: the whole batch at '
                            'once): the batch runs as micro-batches one after another and '
                            'their gradients are averaged, the same update in less memory '
                            "(benchmarks/README.md). Of the global batch with 'jit', of each "
                            "device's with 'pmap'; must divide it.")
  micro_batch_loop: str = _field('scan', "How micro-batches run: 'scan' (a lax.scan inside "
                                 "the one compiled step) or 'host' (a compiled gradient "
                                 "call per micro-batch from Python, then the update; 'jit' "
                                 'parallelism only; on the 2-core CPU faster and smaller, '
                                 'benchmarks/README.md).', choices=('scan', 'host'))
  num_steps: int = _field(1000, 'Training steps.')
  learning_rate: float = _field(5e-5, 'Adam learning rate.')
  constant_steps: int | None = _field(None, 'Steps at the full learning rate before the '
                                      'cosine decay (default: all).')
  decay_steps: int = _field(0, 'Steps of cosine decay (0: constant learning rate).')
  final_learning_rate: float = _field(1e-7, 'Learning rate at the end of the decay.')
  b1: float = _field(0.5, 'Adam beta1 (official 0.5).')
  b2: float = _field(0.999, 'Adam beta2.')
  grad_clip_norm: float = _field(0.0, 'Global-norm gradient clipping (0: off).')
  # Loss-term weights by term name ('angle', 'point', ...); unset terms keep the official
  # weights of losses.LossConfig.
  loss_weights: dict = _field({}, 'Loss-term weights by term name (unset: official).')
  freeze: str = _field('auto', "'auto' (stage 2: encoder, heads, to_one_scales, as the "
                       "official code), 'none', or comma-separated parameter path prefixes.")
  init_from: str | None = _field(None, 'Stage-1 workdir or checkpoint, or a released model '
                                 "(folder or name; 'default': the shipped one), to initialise "
                                 'the frame model from.')
  # Parallelism.
  parallelism: str = _field('jit', "Data parallelism: 'jit' (Mesh + NamedSharding) or 'pmap'.",
                            choices=('jit', 'pmap'))
  multihost: bool = _field(False, 'Call jax.distributed.initialize() (multi-host runs).')
  # Checkpoints, logs, evaluation.
  checkpoint_every: int = _field(500, 'Steps between checkpoints.')
  keep_checkpoints: int = _field(3, 'Checkpoints kept.')
  log_every: int = _field(50, 'Steps between metric lines (means over the interval).')
  eval_every: int = _field(0, 'Steps between validation losses (0: never).')
  eval_batches: int = _field(8, 'Validation batches per evaluation.')
  seed: int = _field(0, 'Parameter initialisation, shuffling and query points.')
  nan_at_step: int = _field(0, 'Test hook: poison the images of this step (1-based) with NaN '
                            'to exercise the non-finite guard (0: off).')

  def __post_init__(self):
    problems = []
    if self.stage not in (1, 2):
      problems.append(f'stage must be 1 or 2, got {self.stage}')
    if self.parallelism not in ('jit', 'pmap'):
      problems.append(f"parallelism must be 'jit' or 'pmap', got {self.parallelism!r}")
    for name in ('batch_size', 'num_steps', 'checkpoint_every', 'keep_checkpoints',
                 'log_every', 'eval_batches'):
      if getattr(self, name) < 1:
        problems.append(f'{name} must be >= 1, got {getattr(self, name)}')
    for name in ('learning_rate', 'b2'):
      if not getattr(self, name) > 0:
        problems.append(f'{name} must be > 0, got {getattr(self, name)}')
    if not 0 <= self.b1 < 1 or not 0 < self.b2 < 1:
      problems.append(f'b1, b2 must be in [0, 1), got {self.b1}, {self.b2}')
    if self.decay_steps < 0 or self.eval_every < 0 or self.grad_clip_norm < 0 or self.seed < 0:
      problems.append('decay_steps, eval_every, grad_clip_norm and seed must be >= 0')
    if self.micro_batch < 0 or (self.micro_batch and self.batch_size % self.micro_batch):
      problems.append(f'micro_batch must be 0 or divide batch_size ({self.batch_size}), got '
                      f'{self.micro_batch}')
    if self.micro_batch_loop not in ('scan', 'host'):
      problems.append(f"micro_batch_loop must be 'scan' or 'host', got {self.micro_batch_loop!r}")
    elif self.micro_batch_loop == 'host' and self.parallelism != 'jit':
      problems.append("micro_batch_loop='host' needs parallelism='jit'")
    if problems:
      raise ValueError('invalid training config: ' + '; '.join(problems))
    self.model_config()  # validates the preset and overrides
    self.loss_config()  # validates the loss weights

  @property
  def data(self) -> DataConfig:
    """The run's data."""
    return DataConfig(**{f.name: getattr(self, f.name) for f in dataclasses.fields(DataConfig)})

  def model_config(self) -> BANetConfig:
    fields = {f.name: f for f in dataclasses.fields(BANetConfig)}
    unknown = sorted(set(self.model_overrides) - set(fields))
    if unknown:
      raise ValueError(f'unknown model fields {unknown}; known: {sorted(fields)}')
    # JSON turns tuples into lists.
    overrides = {k: tuple(v) if isinstance(v, list) else v for k, v in self.model_overrides.items()}
    return get_config(self.preset, **overrides)

  def loss_config(self) -> losses.LossConfig:
    terms = [f.name[:-len('_weight')] for f in dataclasses.fields(losses.LossConfig)
             if f.name.endswith('_weight')]
    unknown = sorted(set(self.loss_weights) - set(terms))
    if unknown:
      raise ValueError(f'unknown loss terms {unknown}; known: {terms}')
    weights = {}
    for term, value in self.loss_weights.items():
      if (isinstance(value, bool) or not isinstance(value, (int, float))
          or not 0 <= value < float('inf')):
        raise ValueError(f'loss weight {term}={value!r} must be a finite number >= 0')
      weights[f'{term}_weight'] = float(value)
    return losses.LossConfig(**weights)

  def frozen_prefixes(self) -> tuple[str, ...]:
    if self.freeze == 'auto':
      return STAGE2_FROZEN if self.stage == 2 else ()
    if self.freeze in ('none', ''):
      return ()
    return tuple(p.strip().strip('/') for p in self.freeze.split(',') if p.strip())

  def to_json(self) -> dict[str, Any]:
    return json.loads(json.dumps(dataclasses.asdict(self)))

  @classmethod
  def from_json(cls, values: dict[str, Any]) -> TrainConfig:
    known = {f.name for f in dataclasses.fields(cls)}
    return cls(**{k: v for k, v in values.items() if k in known})

  def replace(self, **changes) -> TrainConfig:
    return dataclasses.replace(self, **changes)


def run_record(config: TrainConfig, skeleton: Skeleton) -> dict:
  """What every checkpoint (and a workdir's config.json) stores of its run: the TrainConfig
  as JSON, and under OSIM_KEY the identity of the network's OpenSim model `skeleton`."""
  return {**config.to_json(), OSIM_KEY: skeleton.identity()}


def check_run_model(record: dict, skeleton: Skeleton, where: str) -> None:
  """ModelMismatchError unless the run `record` was trained with `skeleton` (records
  written before the model was recorded carry no OSIM_KEY and pass)."""
  if OSIM_KEY in record:
    check_same_model(record[OSIM_KEY], skeleton, where)
