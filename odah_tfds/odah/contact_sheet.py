r"""A contact sheet of a built `odah` dataset: both views' crops with the joint centres
(`joints_2d`) and the skeleton's bones drawn on top, for a few examples and frames.

    python -m odah_tfds.odah.contact_sheet --config=tiny --split=train --out=/tmp/odah_sheet.png
    python -m odah_tfds.odah.contact_sheet --config=lab --families=turning,kneeling --examples=4
    python -m odah_tfds.odah.contact_sheet --config=lab --clips=S0033_03,S0002_00 --examples=2

Reads TFRecord or array_record builds (`--data_dir`, default TFDS's). The points must sit
on the rendered joints: this is how a reader checks cameras, crops and labels agree.
"""

from __future__ import annotations

import pathlib

from absl import app
from absl import flags
import numpy as np
import tensorflow_datasets as tfds

from banet_jax.skeleton.models import project_skeleton
import odah_tfds.odah  # pylint: disable=unused-import  (registers odah)

_CONFIG = flags.DEFINE_string('config', 'tiny', 'odah config.')
_SPLIT = flags.DEFINE_string('split', 'train', 'Split to sample.')
_DATA_DIR = flags.DEFINE_string('data_dir', None, 'TFDS data_dir (default: TFDS default).')
_OUT = flags.DEFINE_string('out', 'odah_contact_sheet.png', 'Output PNG.')
_EXAMPLES = flags.DEFINE_integer('examples', 4, 'Examples (rows) to show.')
_FRAMES = flags.DEFINE_integer('frames', 3, 'Frames per example and view.')
_SEED = flags.DEFINE_integer('seed', 0, 'Which examples and frames to sample.')
_FAMILIES = flags.DEFINE_list('families', None, 'Only clips of these motion families '
                              '(default: any).')
_CLIPS = flags.DEFINE_list('clips', None, 'Only clips whose id starts with one of these '
                           '(a clip, S0021_03, or a subject, S0021; default: any).')


def read_examples(config: str, split: str, data_dir: str | None, count: int,
                  seed: int = 0, families: list[str] | None = None,
                  clips: list[str] | None = None) -> list[dict]:
  """`count` examples of a built split as numpy dicts (sampled with `seed`; with
  `families`, only clips of those motion families; with `clips`, only clips whose id
  starts with one of those strings)."""
  builder = tfds.builder(f'odah/{config}', data_dir=data_dir)
  if not builder.is_prepared():
    raise FileNotFoundError(f'odah/{config} is not built in {builder.data_dir}: run '
                            f'`tfds build odah --config={config}` first')
  total = builder.info.splits[split].num_examples
  rng = np.random.default_rng(seed)
  # Without a filter, the same draw as before `--families` existed (the docs' sheets).
  filtered = bool(families or clips)
  order = rng.permutation(total) if filtered else rng.choice(total, min(count, total),
                                                             replace=False)

  def wanted(example) -> bool:
    clip_id = _text(example['clip_id'])
    return ((not families or _text(example['motion_family']) in families)
            and (not clips or any(clip_id.startswith(c) for c in clips)))

  if builder.info.file_format.value == 'array_record':
    source = builder.as_data_source(split=split)
    read = lambda i: source[int(i)]
  else:
    examples = list(tfds.as_numpy(builder.as_dataset(split=split, shuffle_files=False)))
    read = lambda i: examples[i]
  chosen = []
  for i in order:  # in the seed's order until `count` match
    example = read(i)
    if wanted(example):
      chosen.append((i, example))
    if len(chosen) == count:
      break
  if not chosen:
    raise ValueError(f'no {split} clip of odah/{config} is of the families {families} '
                     f'with an id starting with one of {clips} (None: any)')
  return [example for _, example in sorted(chosen, key=lambda c: c[0])]


def bone_pairs(skeleton) -> list[tuple[int, int]]:
  """(parent joint, child joint) index pairs: the joint whose child body is this joint's
  parent body."""
  by_child = {int(b): j for j, b in enumerate(skeleton.joint_child_body)}
  return [(by_child[int(p)], j) for j, p in enumerate(skeleton.joint_parent_body)
          if int(p) in by_child]


def _text(value) -> str:
  return value.decode() if isinstance(value, bytes) else str(value)


def plot_contact_sheet(examples: list[dict], out: pathlib.Path, frames: int = 3,
                       seed: int = 0) -> pathlib.Path:
  """One row per example: `frames` frames of view 0, then the same frames of view 1."""
  import matplotlib  # pylint: disable=g-import-not-at-top  (matplotlib, 0.4 s: only when plotting)
  matplotlib.use('Agg')
  # Lazy: after choosing Agg, never at import.
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top

  bones = bone_pairs(project_skeleton())
  rng = np.random.default_rng(seed)
  cols = 2 * frames
  fig, axes = plt.subplots(len(examples), cols, figsize=(1.8 * cols, 1.9 * len(examples)),
                           squeeze=False)
  for row, example in enumerate(examples):
    num_frames = example['crops'].shape[1]
    picks = np.sort(rng.choice(num_frames, min(frames, num_frames), replace=False))
    for view in range(2):
      for k, t in enumerate(picks):
        ax = axes[row, view * frames + k]
        ax.imshow(example['crops'][view, t])
        joints = example['joints_2d'][view, t]
        for a, b in bones:
          ax.plot(joints[[a, b], 0], joints[[a, b], 1], '-', color='yellow', lw=0.8)
        ax.plot(joints[:, 0], joints[:, 1], 'o', ms=2, color='red')
        ax.set_title(f'{_text(example["clip_id"])} v{view} t{t}', fontsize=5)
        ax.axis('off')
  fig.tight_layout()
  out.parent.mkdir(parents=True, exist_ok=True)
  fig.savefig(out, dpi=150)
  plt.close(fig)
  return out


def main(argv):
  del argv
  examples = read_examples(_CONFIG.value, _SPLIT.value, _DATA_DIR.value, _EXAMPLES.value,
                           _SEED.value, _FAMILIES.value, _CLIPS.value)
  out = plot_contact_sheet(examples, pathlib.Path(_OUT.value), _FRAMES.value, _SEED.value)
  print(f'wrote {out} ({len(examples)} examples of odah/{_CONFIG.value} {_SPLIT.value})')


if __name__ == '__main__':
  app.run(main)
