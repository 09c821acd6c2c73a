"""BANet network modules (Flax linen).

    from banet_jax.model import BANet, get_config
    net = BANet.create(get_config('tiny'))        # or 'paper'
    variables = net.init_frame(jax.random.key(0))
    raw = net.frame.apply(variables, images, crop_pixels, points)   # (B, 102)
    net.predict(raw)  # {'coordinates': (B, 39), 'scales': (B, 22, 3), 'points': (B, 44, 3)}

Modules: `hourglass` (stacked-hourglass encoder and heads), `sampling` (bilinear
feature sampling, visual-hull query points), `point_head` (weight-normalised
point-to-OpenSim MLP), `frame_model` (the stage-1 network), `restormer` (the
stage-2 temporal module), `outputs` (output layout, decoding, 3-D points),
`banet` (configs, presets and the assembled stage-1/stage-2 models).
"""

from banet_jax.model.banet import BANet, BANetConfig, BANetFrame, BANetSequence, PRESETS, get_config
from banet_jax.model.outputs import OutputLayout, decode, encode, output_layout, skeleton_points

__all__ = ['BANet', 'BANetConfig', 'BANetFrame', 'BANetSequence', 'OutputLayout', 'PRESETS',
           'decode', 'encode', 'get_config', 'output_layout', 'skeleton_points']
