r"""Peak memory of `launch.predict --videos` against video length (bounded streaming).

    .venv/bin/python benchmarks/capture_memory.py --checkpoint=runs/main_stage2 --frames=100,1000

Writes longer versions of the Pose2Sim demo's cam01 and cam04 videos (the 100 frames played
forwards and backwards in turn, 1080p, 60 fps, mp4v) into a temporary folder, runs the
whole command on each length in a fresh process, and prints the peak resident memory of
each run (the process's `ru_maxrss`) and the seconds per frame. Bounded streaming shows as
a peak that does not grow with the number of frames beyond the per-frame outputs (landmarks,
coordinates: a few kB per frame).
"""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys
import tempfile
import time

from absl import app, flags
import cv2

_CHECKPOINT = flags.DEFINE_string('checkpoint', 'runs/main_stage2', 'BANet checkpoint or run.')
_FRAMES = flags.DEFINE_list('frames', ['100', '1000'], 'Video lengths to run (frames).')

ROOT = pathlib.Path(__file__).resolve().parents[1]
_CHILD = '''
import resource, runpy, sys
sys.argv = ['launch.predict'] + sys.argv[1:]
try:
  runpy.run_module('launch.predict', run_name='__main__')
finally:
  print('MAXRSS_KB', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr)
'''


def _loop_video(src: pathlib.Path, dst: pathlib.Path, frames: int) -> None:
  cap = cv2.VideoCapture(str(src))
  images = []
  while True:
    ok, image = cap.read()
    if not ok:
      break
    images.append(image)
  order = images + images[::-1]
  h, w = images[0].shape[:2]
  writer = cv2.VideoWriter(str(dst), cv2.VideoWriter_fourcc(*'mp4v'), 60.0, (w, h))
  for k in range(frames):
    writer.write(order[k % len(order)])
  writer.release()


def main(argv):
  del argv
  sys.path.insert(0, str(ROOT))
  from banet_jax.capture import demo  # pylint: disable=g-import-not-at-top
  folder = demo.demo_capture_dir()
  calib = folder / 'calibration' / 'Calib.qca.txt'
  print('| frames | peak RSS (MiB) | wall s | s / frame |\n|---|---|---|---|')
  with tempfile.TemporaryDirectory() as tmp:
    for frames in map(int, _FRAMES.value):
      videos = []
      for cam in ('cam01', 'cam04'):
        path = pathlib.Path(tmp) / f'{frames}' / f'{cam}.mp4'
        path.parent.mkdir(exist_ok=True)
        _loop_video(folder / 'videos' / f'{cam}.mp4', path, frames)
        videos.append(str(path))
      env = dict(os.environ, PYTHONPATH=str(ROOT))
      t0 = time.perf_counter()
      out = subprocess.run([sys.executable, '-c', _CHILD, f'--checkpoint={_CHECKPOINT.value}',
                            f'--videos={",".join(videos)}', f'--calibration={calib}',
                            f'--out_dir={tmp}/out{frames}'], cwd=ROOT, env=env,
                           capture_output=True, text=True, check=False)
      wall = time.perf_counter() - t0
      if out.returncode != 0:
        sys.exit(out.stderr[-3000:])
      rss = int(out.stderr.rsplit('MAXRSS_KB', 1)[1].split()[0]) / 1024
      print(f'| {frames} | {rss:.0f} | {wall:.0f} | {wall / frames:.3f} |')


if __name__ == '__main__':
  app.run(main)
