r"""Print BANet's parameter count per module and the two totals.

    python -m launch.model_summary --preset=paper
    python -m launch.model_summary --preset=tiny --model=path/to/other.osim

Shapes only (`jax.eval_shape`): nothing is allocated or run, so the paper-size
network is summarised in seconds on a CPU. The official network has about
17.44 M parameters in the frame model and 31.95 M with the spatio-temporal
module (31.84 M of which are used in its forward pass; the unused refinement
block is not built here).
"""

from __future__ import annotations

from absl import app
from absl import flags

from banet_jax.model.banet import BANet, PRESETS, get_config, parameter_summary

_PRESET = flags.DEFINE_enum('preset', 'paper', sorted(PRESETS), 'Network sizes.')
_MODEL = flags.DEFINE_string('model', None, 'OpenSim model (default: the project model).')


def main(argv):
  del argv
  config = get_config(_PRESET.value, model_path=_MODEL.value)
  net = BANet.create(config)
  print(f'BANet preset {_PRESET.value!r}, model {net.layout.skeleton.model_name!r}: '
        f'{net.layout.num_predicted} coordinates + {net.layout.num_bodies} x 3 scales '
        f'= {net.layout.out_dim} outputs per frame')
  rows = parameter_summary(net)
  width = max(len(name) for name, _ in rows)
  for name, n in rows:
    print(f'{name:<{width}}  {n:>12,d}  ({n / 1e6:.3f} M)')


if __name__ == '__main__':
  app.run(main)
