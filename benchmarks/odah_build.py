r"""ODAH build throughput: rendering alone, and a whole `tfds build`.

    .venv/bin/python benchmarks/odah_build.py                      # render rows + tiny build
    .venv/bin/python benchmarks/odah_build.py --build_configs= --render_sizes=128x128/64,512x512/256
    .venv/bin/python benchmarks/odah_build.py --build_configs=tiny --workers=1,2

Rows:
* `render`: one anny subject, a walking clip of `--frames` frames, both views rendered and
  cropped by `odah_tfds.render.clip.render_clip` in this process (never imports
  TensorFlow), Mesa's llvmpipe limited to `--llvmpipe_threads` threads (1: a per-core
  figure); the first clip (GL context, shader compile) is excluded; frames per second
  counts frames of one view (a frame = 2 images).
* `build`: `tfds build odah_tfds/odah --config=<c>` into a fresh data_dir with
  `ODAH_WORKERS=<w>`: wall seconds and frames (per view) per second, and per core
  (divided by min(workers, cores)). The JAX compilation cache is kept (its location is
  printed), so the first build on a machine is slower than later ones.
It prints the platform and a Markdown table. On a GPU machine the renderer uses the GPU
through EGL; the rest of the build stays on the CPU.
"""

from __future__ import annotations

import os
import pathlib
import platform
import re
import subprocess
import sys
import tempfile
import time

from absl import app
from absl import flags
import numpy as np

_SIZES = flags.DEFINE_list('render_sizes', ['128x128/64', '256x256/128', '512x512/256'],
                           'WIDTHxHEIGHT/CROP rows of the render benchmark (empty: none).')
_FRAMES = flags.DEFINE_integer('frames', 32, 'Frames of the rendered clip.')
_REPEATS = flags.DEFINE_integer('repeats', 2, 'Timed clips per render row (median).')
_THREADS = flags.DEFINE_integer('llvmpipe_threads', 1,
                                'LP_NUM_THREADS for Mesa llvmpipe (0: Mesa default).')
_CONFIGS = flags.DEFINE_list('build_configs', ['tiny'], 'odah configs to build (empty: none).')
_WORKERS = flags.DEFINE_list('workers', ['2'], 'ODAH_WORKERS values for the build rows.')

ROOT = pathlib.Path(__file__).resolve().parents[1]


def platform_line() -> str:
  cpu = platform.processor() or platform.machine()
  try:
    for line in pathlib.Path('/proc/cpuinfo').read_text().splitlines():
      if line.startswith('model name'):
        cpu = line.split(':', 1)[1].strip()
        break
  except OSError:
    pass
  load = ', '.join(f'{x:.2f}' for x in os.getloadavg())
  return f'{cpu}; {os.cpu_count()} cores; load average {load}; Python {platform.python_version()}'


def render_rows(sizes, frames: int, repeats: int) -> list[dict]:
  """Times render_clip in this process for each WIDTHxHEIGHT/CROP."""
  from odah_tfds import motions  # pylint: disable=g-import-not-at-top
  from odah_tfds.body.anny_body import AnnyBody  # pylint: disable=g-import-not-at-top
  from odah_tfds.render import clip as clip_lib  # pylint: disable=g-import-not-at-top
  from odah_tfds.render import renderer as renderer_lib  # pylint: disable=g-import-not-at-top

  rng = np.random.default_rng(0)
  body = AnnyBody()
  subject = body.sample_subject(rng)
  motion = motions.sample_motion('walking', rng, fps=60.0, num_frames=frames)
  posed = body.pose_motion(subject, motion.coordinates)
  rows = []
  for size in sizes:
    match = re.fullmatch(r'(\d+)x(\d+)/(\d+)', size.strip())
    if not match:
      raise ValueError(f'render size must be WIDTHxHEIGHT/CROP, got {size!r}')
    width, height, crop = map(int, match.groups())
    config = clip_lib.RenderConfig(image_size=(width, height), crop_size=crop)
    with renderer_lib.Renderer((width, height)) as renderer:
      times = []
      for k in range(repeats + 1):
        cams, look, _ = clip_lib.sample_clip_setup(rng, posed.vertices, body, config)
        start = time.perf_counter()
        clip_lib.render_clip(renderer, posed.vertices, body.faces, cams, look, crop)
        if k:  # the first clip pays for the GL context and shader compilation
          times.append(time.perf_counter() - start)
    seconds = float(np.median(times))
    rows.append({'row': 'render', 'what': f'{width}x{height} -> {crop}', 'workers': 1,
                 'frames': frames, 'seconds': seconds, 'fps': frames / seconds,
                 'fps_per_core': frames / seconds,
                 'ms_per_image': 1000 * seconds / (2 * frames)})
  return rows


def build_row(config: str, workers: int) -> dict:
  """Times `tfds build odah_tfds/odah --config=config` into a fresh data_dir."""
  tfds_cli = str(pathlib.Path(sys.executable).parent / 'tfds')
  with tempfile.TemporaryDirectory(prefix='odah_bench_') as data_dir:
    env = dict(os.environ, ODAH_WORKERS=str(workers), TF_CPP_MIN_LOG_LEVEL='2')
    start = time.perf_counter()
    out = subprocess.run([tfds_cli, 'build', 'odah_tfds/odah', f'--config={config}',
                          f'--data_dir={data_dir}'], cwd=ROOT, env=env, capture_output=True,
                         text=True, check=False)
    seconds = time.perf_counter() - start
  if out.returncode:
    raise RuntimeError(f'tfds build failed:\n{out.stderr[-4000:]}')
  # Each split's summary line is logged and printed: count every split once.
  per_split = dict(re.findall(r'odah/\S+ (\w+): \d+ clips, (\d+) frames x 2 views',
                              out.stdout + out.stderr))
  frames = sum(int(v) for v in per_split.values())
  cores = min(workers, os.cpu_count() or 1)
  return {'row': 'build', 'what': f'odah/{config}', 'workers': workers, 'frames': frames,
          'seconds': seconds, 'fps': frames / seconds, 'fps_per_core': frames / seconds / cores,
          'ms_per_image': None}


def main(argv):
  del argv
  if _THREADS.value:
    os.environ['LP_NUM_THREADS'] = str(_THREADS.value)  # before the GL context exists
  os.environ.setdefault('PYOPENGL_PLATFORM', 'egl')
  print(platform_line())
  print(f'JAX compilation cache of the build workers: '
        f'{os.environ.get("JAX_COMPILATION_CACHE_DIR", "~/.cache/odah_tfds/jax")}')
  rows = render_rows([s for s in _SIZES.value if s], _FRAMES.value, _REPEATS.value)
  for config in [c for c in _CONFIGS.value if c]:
    for workers in _WORKERS.value:
      rows.append(build_row(config, int(workers)))
  print('\n| row | what | workers | frames (per view) | seconds | frames/s | frames/s per core '
        '| ms per image |')
  print('|---|---|---|---|---|---|---|---|')
  for r in rows:
    ms = '-' if r['ms_per_image'] is None else f'{r["ms_per_image"]:.1f}'
    print(f'| {r["row"]} | {r["what"]} | {r["workers"]} | {r["frames"]} | {r["seconds"]:.1f} | '
          f'{r["fps"]:.2f} | {r["fps_per_core"]:.2f} | {ms} |')


if __name__ == '__main__':
  app.run(main)
