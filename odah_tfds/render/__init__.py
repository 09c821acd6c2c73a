"""ODAH rendering: two calibrated views, person masks and BANet's square crops.

* `cameras`: two-view rigs (`sample_rig`, `RigConfig`), visibility check, pyrender conversion.
* `appearance`: skin, clothes, hair, backgrounds, light, motion blur (`sample_appearance`).
* `renderer`: `Renderer`, a reusable headless pyrender renderer (EGL by default).
* `square_crop`, `EmptyMaskError`: the official square crop (from `banet_jax.crops`).
* `clip`: `render_clip` (a clip's view features, as odah_tfds/schema.py), `RenderConfig`.

Never import TensorFlow in a process that renders (TF and Mesa GL segfault together);
pyrender is only imported when a `Renderer` is made. See README.md.
"""

from odah_tfds.render.appearance import (Appearance, AppearanceConfig, BodyParts, Lighting,
                                         MotionBlur, sample_appearance)
from odah_tfds.render.cameras import (RigConfig, clip_target_and_extent, pyrender_intrinsics,
                                      pyrender_pose, sample_rig, visible_fraction)
from odah_tfds.render.clip import (PRESETS, RenderConfig, make_renderer, render_clip,
                                   sample_clip_setup)
from banet_jax.crops import EmptyMaskError, square_crop
from odah_tfds.render.renderer import Renderer, blur_subframes

__all__ = [
    'Appearance', 'AppearanceConfig', 'BodyParts', 'EmptyMaskError', 'Lighting', 'MotionBlur',
    'PRESETS', 'RenderConfig', 'Renderer', 'RigConfig', 'blur_subframes',
    'clip_target_and_extent', 'make_renderer', 'pyrender_intrinsics', 'pyrender_pose',
    'render_clip', 'sample_appearance', 'sample_clip_setup', 'sample_rig', 'square_crop',
    'visible_fraction',
]
