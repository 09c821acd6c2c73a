"""Streaming, synchronised decoding of several camera videos, with frame-rate resampling.

Contract
  * Decoder: OpenCV's `cv2.VideoCapture` with its bundled FFmpeg (H.264, HEVC, VP9, MPEG-4,
    MJPEG, ...). Rotation metadata (phones) is applied, as OpenCV does by default: sizes
    and frames are as displayed; `VideoInfo.rotation` says what was applied.
  * Frames: RGB uint8 arrays of shape (H, W, 3), read-only (a repeated frame is the same
    array object; copy before drawing on it). Sizes are (width, height) in pixels.
  * Synchronisation: the videos are taken to start at the same instant and to run at the
    same constant rate; frame i of every video is the same instant i / fps (seconds).
    `check_videos` enforces equal rates and frame counts. Variable-frame-rate files are
    read as if constant (their container's average rate); offsets between cameras are not
    estimated here.
  * Resampling (`resample_indices`): output frame k is the instant t_k = k / fps_out and
    shows the source frame nearest in time, round(t_k * fps_in), ties to the earlier
    frame. The output instants cover the video from its first frame (t = 0) to its last
    (t = (T_in - 1) / fps_in), never beyond:
        T_out = floor((T_in - 1) * fps_out / fps_in) + 1     (0 when T_in = 0)
    so 30 -> 60 fps shows frames 0, 0, 1, 1, ..., T_in - 2, T_in - 2, T_in - 1 (2 T_in - 1
    frames), 60 -> 30 fps frames 0, 2, 4, ... (ceil(T_in / 2) frames), and fps_out ==
    fps_in is the identity. Each shown frame is within half a source frame of t_k.
  * Streaming: `SyncedFrames` decodes each file once, front to back, without seeking; the
    source frames the resampling drops are skipped with `grab()` (decoded, not converted).
    It holds one decoded frame per camera at a time, so memory does not grow with length.
  * Frame counts (`probe`): the container's count is trusted where the container indexes
    every frame (mp4, mov, m4v, 3gp, avi); otherwise, or when it is missing, frames are
    counted by decoding the file once (grab() only). A file that still ends early, or a
    frame that fails to decode, raises `VideoError` naming the file, camera and frame.
  * Errors: every problem with a file is a `VideoError` (a ValueError) whose message
    names the file (and camera, frame where known) and says how to fix it.
"""

from __future__ import annotations

import dataclasses
import math
import os
import pathlib
import sys
from typing import Iterator, Sequence

import numpy as np

try:
  import cv2
except ImportError as e:  # pragma: no cover - depends on the environment
  raise ImportError('banet_jax.capture.video needs OpenCV: '
                    'pip install opencv-python-headless') from e

# Containers whose frame count comes from a per-frame index (exact); others are counted.
INDEXED_CONTAINERS = ('.mp4', '.mov', '.m4v', '.3gp', '.avi')
_REENCODE = 'ffmpeg -i IN -c:v libx264 -crf 18 -pix_fmt yuv420p OUT.mp4'


class VideoError(ValueError):
  """A video file that cannot be used as is; the message names it and says how to fix it."""


@dataclasses.dataclass(frozen=True)
class VideoInfo:
  """What `probe` learnt about one video file."""
  path: str
  width: int         # pixels, as decoded (after rotation metadata)
  height: int        # pixels
  fps: float         # frames per second (the container's, or the caller's override)
  num_frames: int
  codec: str         # FourCC, e.g. 'h264', 'VP90', 'MJPG'
  rotation: int = 0  # degrees of rotation metadata applied by the decoder

  @property
  def size(self) -> tuple[int, int]:
    """(width, height) in pixels."""
    return self.width, self.height

  @property
  def duration(self) -> float:
    """Seconds: num_frames / fps."""
    return self.num_frames / self.fps


def _label(path, name=None) -> str:
  return f'{name} ({path})' if name else str(path)


def _open(path, name=None, threads: int | None = None):
  """An opened cv2.VideoCapture on `path`, or VideoError."""
  path = os.fspath(path)
  if not os.path.exists(path):
    raise VideoError(f'video {_label(path, name)}: no such file; check the path (and the '
                     'working directory it is relative to)')
  if os.path.isdir(path):
    raise VideoError(f'video {_label(path, name)}: is a folder, not a video file')
  params = [] if threads is None else [cv2.CAP_PROP_N_THREADS, int(threads)]
  cap = cv2.VideoCapture(path, cv2.CAP_FFMPEG, params)
  if not cap.isOpened():
    raise VideoError(f'video {_label(path, name)}: OpenCV/FFmpeg cannot open it (not a video, '
                     f'truncated, or an unsupported codec); re-encode it, e.g. {_REENCODE}')
  return cap


def _fourcc(cap) -> str:
  code = int(cap.get(cv2.CAP_PROP_FOURCC)) & 0xFFFFFFFF
  chars = code.to_bytes(4, 'little').decode('latin-1')
  return ''.join(c if c.isprintable() else '?' for c in chars).strip() or '?'


def probe(path, *, fps: float | None = None, count_frames: bool | None = None,
          name: str | None = None) -> VideoInfo:
  """Size, rate, frame count and codec of a video; decodes its first frame.

  fps: frames per second to use instead of the container's (required when the container
    has none). count_frames: True counts frames by decoding the whole file (grab only),
    False trusts the container, None (default) counts only where the container does not
    index its frames or reports no count. name: the camera, for messages.
  Raises VideoError for a missing, unreadable or undecodable file or an unusable rate.
  """
  path = os.fspath(path)
  cap = _open(path, name)
  try:
    codec = _fourcc(cap)
    rotation = int(cap.get(cv2.CAP_PROP_ORIENTATION_META) or 0)
    ok, frame = cap.read()
    if not ok or frame is None:
      raise VideoError(f'video {_label(path, name)}: the first frame does not decode (codec '
                       f'{codec!r}); re-encode it, e.g. {_REENCODE}')
    height, width = frame.shape[:2]
    if fps is None:
      fps = float(cap.get(cv2.CAP_PROP_FPS))
      if not math.isfinite(fps) or fps <= 0:
        raise VideoError(f'video {_label(path, name)}: the container stores no usable frame '
                         f'rate ({fps}); give the recording rate explicitly (--fps=60, or '
                         'probe(path, fps=60))')
    elif not math.isfinite(fps) or fps <= 0:
      raise VideoError(f'video {_label(path, name)}: fps must be positive, got {fps}')
    container_count = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
    if count_frames is None:
      count_frames = (container_count <= 0
                      or pathlib.Path(path).suffix.lower() not in INDEXED_CONTAINERS)
    if count_frames:
      num_frames = 1
      while cap.grab():
        num_frames += 1
    else:
      num_frames = container_count
      if num_frames <= 0:
        raise VideoError(f'video {_label(path, name)}: the container reports no frame count; '
                         'count them by decoding (count_frames=True)')
  finally:
    cap.release()
  return VideoInfo(path=path, width=int(width), height=int(height), fps=float(fps),
                   num_frames=int(num_frames), codec=codec, rotation=rotation)


def resample_indices(num_frames: int, fps_in: float, fps_out: float) -> np.ndarray:
  """(T_out,) int64 source frame shown at each output frame (see the module docstring).

  T_out = floor((T_in - 1) * fps_out / fps_in) + 1; output k shows source frame
  round(k * fps_in / fps_out), ties to the earlier frame: non-decreasing, in [0, T_in).
  """
  if num_frames < 0:
    raise ValueError(f'num_frames must be >= 0, got {num_frames}')
  for label, value in (('fps_in', fps_in), ('fps_out', fps_out)):
    if not math.isfinite(value) or value <= 0:
      raise ValueError(f'{label} must be a positive frame rate, got {value}')
  if fps_in == fps_out:
    return np.arange(num_frames, dtype=np.int64)
  ratio = fps_in / fps_out
  eps = 1e-9  # absorbs float error in exact ratios such as 60 / 25
  count = math.floor((num_frames - 1) / ratio + eps) + 1 if num_frames else 0
  return np.ceil(np.arange(count) * ratio - 0.5 - eps).astype(np.int64)


def check_videos(infos: Sequence[VideoInfo], names: Sequence[str],
                 sizes: Sequence[tuple[int, int]] | None = None, *,
                 fps_tolerance: float = 0.01, frame_tolerance: int = 0,
                 block: int = 16) -> None:
  """Checks that the videos can be read as one synchronised capture; VideoError if not.

  infos, names: one per camera. sizes: each camera's calibration size (width, height) in
  pixels, or None to skip. fps_tolerance: largest difference in frames per second;
  frame_tolerance: largest difference in frame counts. block: sizes that agree once rounded
  up to a multiple of `block` pixels agree (codec padding, e.g. 1080 coded as 1088: the
  padding is at the right/bottom edge, so pixel coordinates are unchanged); 1 is exact.
  """
  if len(infos) != len(names):
    raise ValueError(f'{len(infos)} videos but {len(names)} camera names')
  if sizes is not None and len(sizes) != len(infos):
    raise ValueError(f'{len(infos)} videos but {len(sizes)} calibration sizes')
  ref, ref_name = (infos[0], names[0]) if infos else (None, None)
  for info, name in zip(infos[1:], names[1:]):
    if abs(info.fps - ref.fps) > fps_tolerance:
      longest = max(ref.duration, info.duration)
      drift = abs(info.fps - ref.fps) * longest
      raise VideoError(
          f'videos disagree on frame rate: camera {ref_name} ({ref.path}) {ref.fps:g} fps, '
          f'camera {name} ({info.path}) {info.fps:g} fps (tolerance {fps_tolerance:g}; '
          f'the cameras would drift {drift:.1f} frames apart over {longest:.1f} s). Record '
          'all cameras at one rate, or re-encode to a common rate '
          '(ffmpeg -i IN -r RATE OUT.mp4); if a container rate is wrong, give --fps')
    if abs(info.num_frames - ref.num_frames) > frame_tolerance:
      raise VideoError(
          f'videos disagree on length: camera {ref_name} ({ref.path}) {ref.num_frames} '
          f'frames, camera {name} ({info.path}) {info.num_frames} frames (tolerance '
          f'{frame_tolerance}). The videos must be synchronised recordings of the same '
          'length: trim them to a common start and end (ffmpeg -ss / -frames:v), or allow '
          'the difference (frame_tolerance) to read the common part')
  if sizes is None:
    return

  def same(a, b):
    up = lambda v: -(-int(v) // block) * block
    return up(a[0]) == up(b[0]) and up(a[1]) == up(b[1])

  for info, name, size in zip(infos, names, sizes):
    size = (int(size[0]), int(size[1]))
    if same(info.size, size):
      continue
    msg = (f'camera {name}: video {info.path} is {info.width}x{info.height} (width x height) '
           f'but its calibration is {size[0]}x{size[1]}. ')
    if same(info.size, size[::-1]):
      hint = ('The video is rotated by 90 degrees relative to the calibration'
              + (f' (the decoder applied {info.rotation} degrees of rotation metadata)'
                 if info.rotation else '')
              + ': use the video recorded in the calibration\'s orientation, rotate it '
              '(ffmpeg -i IN -vf transpose=1 OUT.mp4, or transpose=2 the other way), or '
              'calibrate in this orientation')
    elif abs(info.width * size[1] / (info.height * size[0]) - 1) < 0.01:
      hint = ('The aspect ratio matches: the video was recorded or exported at another '
              'resolution than the calibration images; use the calibration resolution, or '
              'scale the intrinsics (fx, fy, cx, cy) by the size ratio')
    else:
      hint = ('Check that this calibration camera is the camera that recorded this video '
              '(camera order and names), and that the video was not cropped')
    raise VideoError(msg + hint)


def _to_rgb(frame: np.ndarray) -> np.ndarray:
  if frame.ndim == 2:
    rgb = cv2.cvtColor(frame, cv2.COLOR_GRAY2RGB)
  elif frame.shape[2] == 4:
    rgb = cv2.cvtColor(frame, cv2.COLOR_BGRA2RGB)
  else:
    rgb = cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
  rgb.flags.writeable = False
  return rgb


class _Reader:
  """One camera's sequential decoder: frame(i) for non-decreasing i, no seeking."""

  def __init__(self, info: VideoInfo, name: str, threads: int | None):
    self.info, self.name = info, name
    self.cap = _open(info.path, name, threads)
    self.pos = 0             # index of the next frame the decoder returns
    self.last = (-1, None)   # (index, RGB frame) most recently decoded

  def _fail(self, index: int, what: str):
    raise VideoError(
        f'video {_label(self.info.path, self.name)}: frame {index} of {self.info.num_frames} '
        f'{what}. The file may be truncated, or its container\'s frame count wrong (count '
        f'frames by decoding: count_frames=True); or re-encode it ({_REENCODE})')

  def frame(self, index: int) -> np.ndarray:
    if index == self.last[0]:
      return self.last[1]
    if index < self.pos:
      raise ValueError(f'frames must be read in order: {index} after {self.pos - 1}')
    while self.pos < index:
      if not self.cap.grab():
        self._fail(self.pos, 'could not be decoded (the stream ended or is corrupt)')
      self.pos += 1
    ok, bgr = self.cap.read()
    if not ok or bgr is None:
      self._fail(index, 'could not be decoded (the stream ended or is corrupt)')
    self.pos += 1
    if bgr.shape[:2] != (self.info.height, self.info.width):
      self._fail(index, f'is {bgr.shape[1]}x{bgr.shape[0]}, not {self.info.width}x'
                 f'{self.info.height} like the first frame (the resolution changes mid-file)')
    self.last = (index, None)  # drop the previous frame before holding the next one
    self.last = (index, _to_rgb(bgr))
    return self.last[1]

  def close(self):
    self.cap.release()
    self.last = (-1, None)


class SyncedFrames:
  """Iterable over synchronised frames of several videos, one frame per camera at a time.

      frames = SyncedFrames(['cam01.mp4', 'cam02.mp4'], fps_out=30)
      for k, (image0, image1) in frames:   # RGB uint8 (H, W, 3) per camera
        ...

  paths: one video per camera. fps_out: output frames per second (None: the videos' rate).
  start, num_frames: the output frames [start, start + num_frames) (None: to the end); the
  frames before `start` are decoded and skipped. progress: a tqdm bar on stderr. names:
  camera names for messages and the bar (default: file stems). fps: the videos' rate
  instead of the containers'. frame_tolerance: allowed difference in frame counts (the
  common part is read). threads: FFmpeg decoding threads per video (None: OpenCV's
  default). Constructing probes and checks the videos (VideoError).
  """

  def __init__(self, paths: Sequence, fps_out: float | None = None, start: int = 0,
               num_frames: int | None = None, progress: bool = True,
               names: Sequence[str] | None = None, *, fps: float | None = None,
               frame_tolerance: int = 0, count_frames: bool | None = None,
               threads: int | None = None):
    paths = [os.fspath(p) for p in paths]
    if not paths:
      raise ValueError('SyncedFrames needs at least one video')
    self.names = [pathlib.Path(p).stem for p in paths] if names is None else list(names)
    if len(self.names) != len(paths):
      raise ValueError(f'{len(paths)} videos but {len(self.names)} camera names')
    self.infos = [probe(p, fps=fps, count_frames=count_frames, name=n)
                  for p, n in zip(paths, self.names)]
    check_videos(self.infos, self.names, frame_tolerance=frame_tolerance)
    self.fps_in = self.infos[0].fps
    self.fps_out = self.fps_in if fps_out is None else float(fps_out)
    source_frames = min(info.num_frames for info in self.infos)
    all_indices = resample_indices(source_frames, self.fps_in, self.fps_out)
    if start < 0 or start > len(all_indices):
      raise ValueError(f'start={start} is outside the {len(all_indices)} output frames')
    stop = len(all_indices) if num_frames is None else min(len(all_indices), start + num_frames)
    self.start = start
    self.source_indices = all_indices[start:stop]   # (T_out,) source frame per output frame
    self.progress, self.threads = progress, threads

  def __len__(self) -> int:
    """Number of output frames."""
    return len(self.source_indices)

  def __iter__(self) -> Iterator[tuple[int, list[np.ndarray]]]:
    """Yields (output frame index k, [RGB uint8 (H, W, 3) per camera]); k counts from 0 at
    the video's start, so the first yielded k is `start`."""
    from tqdm import tqdm
    readers = []
    bar = tqdm(total=len(self), desc='decoding ' + ','.join(self.names), unit='frame',
               file=sys.stderr, disable=not self.progress)
    try:
      for info, name in zip(self.infos, self.names):
        readers.append(_Reader(info, name, self.threads))
      for k, source in enumerate(self.source_indices):
        frames = [reader.frame(int(source)) for reader in readers]
        yield self.start + k, frames
        del frames
        bar.update(1)
    finally:
      bar.close()
      for reader in readers:
        reader.close()


def read_frames(path, indices: Sequence[int], *, name: str | None = None) -> np.ndarray:
  """(N, H, W, 3) uint8 RGB: the frames `indices` (any order, repeats allowed) of one video.

  Decodes sequentially up to max(indices) and keeps the requested frames: for tests and
  overlays with few frames, not for whole videos.
  """
  indices = np.asarray(indices, dtype=np.int64).reshape(-1)
  if not len(indices) or indices.min() < 0:
    raise ValueError(f'read_frames needs frame indices >= 0, got {indices.tolist()}')
  info = probe(path, name=name)
  reader = _Reader(info, name, None)
  try:
    wanted = np.unique(indices)
    frames = {int(i): reader.frame(int(i)) for i in wanted}
  finally:
    reader.close()
  return np.stack([frames[int(i)] for i in indices])
