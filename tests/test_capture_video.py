"""banet_jax.capture.video (decoding, synchronisation, resampling, checks) and .demo.

The test videos are written with cv2.VideoWriter; frame i shows i in binary as eight
white/black vertical stripes (robust to compression) under a red band (RGB order).
"""

from __future__ import annotations

import fractions
import gc
import math
import pathlib
import tracemalloc
import weakref

import numpy as np
import pytest

cv2 = pytest.importorskip('cv2')

from banet_jax.capture import video  # noqa: E402
from banet_jax.capture.video import VideoError, VideoInfo  # noqa: E402

W, H, BAND, BITS = 320, 240, 40, 8


def write_clip(path, num_frames, fps, fourcc='MJPG', size=(W, H)):
  """Writes frames 0..num_frames-1 (BGR) encoding their index; returns the path."""
  width, height = size
  stripe = width // BITS
  writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), float(fps), size)
  assert writer.isOpened(), f'this OpenCV cannot write {fourcc} to {path}'
  for i in range(num_frames):
    frame = np.zeros((height, width, 3), np.uint8)
    frame[:BAND] = (0, 0, 255)   # BGR red
    for bit in range(BITS):
      if (i >> bit) & 1:
        frame[BAND:, bit * stripe:(bit + 1) * stripe] = 255
    writer.write(frame)
  writer.release()
  return pathlib.Path(path)


def frame_index(rgb):
  """The index encoded by write_clip in an RGB frame."""
  stripe = rgb.shape[1] // BITS
  grey = rgb[BAND + 8:, :, 1].astype(np.float32)
  bits = [grey[:, b * stripe + 8:(b + 1) * stripe - 8].mean() > 128 for b in range(BITS)]
  return sum(int(v) << b for b, v in enumerate(bits))


@pytest.fixture(scope='module')
def clips(tmp_path_factory):
  folder = tmp_path_factory.mktemp('clips')
  return {
      '30': write_clip(folder / 'a30.avi', 40, 30),
      '30b': write_clip(folder / 'b30.mp4', 40, 30, 'mp4v'),
      '60': write_clip(folder / 'a60.avi', 80, 60),
      '60short': write_clip(folder / 'b60.avi', 79, 60),
      '25': write_clip(folder / 'a25.avi', 30, 25),
  }


def decoded(frames):
  return [(k, [frame_index(f) for f in images]) for k, images in frames]


# -- probe and read_frames ----------------------------------------------------------------

@pytest.mark.parametrize('key,codec', [('30', 'MJPG'), ('30b', 'FMP4')])   # FMP4: mp4v
def test_probe_and_read_frames(clips, key, codec):
  info = video.probe(clips[key])
  assert info == VideoInfo(path=str(clips[key]), width=W, height=H, fps=30.0, num_frames=40,
                           codec=codec, rotation=0)
  assert info.size == (W, H) and info.duration == pytest.approx(40 / 30)
  frames = video.read_frames(clips[key], [5, 0, 39, 5])
  assert frames.shape == (4, H, W, 3) and frames.dtype == np.uint8
  assert [frame_index(f) for f in frames] == [5, 0, 39, 5]
  band = frames[:, :BAND // 2].reshape(-1, 3).mean(0)
  assert band[0] > 200 and band[1] < 50 and band[2] < 50   # red in RGB order


def test_probe_counts_frames_of_unindexed_containers(tmp_path):
  # A truncated Matroska file: the container still claims 30 frames, 15 decode.
  path = write_clip(tmp_path / 'c.mkv', 30, 30)
  data = path.read_bytes()
  path.write_bytes(data[:len(data) // 2])
  claimed = int(cv2.VideoCapture(str(path), cv2.CAP_FFMPEG).get(cv2.CAP_PROP_FRAME_COUNT))
  info = video.probe(path)
  assert claimed == 30 and 0 < info.num_frames < 30
  assert video.probe(path, count_frames=False).num_frames == claimed
  assert len(list(video.SyncedFrames([path], progress=False))) == info.num_frames


def test_fps_override_and_bad_fps(clips):
  assert video.probe(clips['30'], fps=120).fps == 120
  with pytest.raises(VideoError, match='a30.avi'):
    video.probe(clips['30'], fps=0)
  with pytest.raises(VideoError, match='a30.avi'):
    video.probe(clips['30'], fps=math.nan)


def test_missing_and_undecodable_files(tmp_path):
  with pytest.raises(VideoError, match=r'cam9 \(.*nope\.mp4\).*no such file'):
    video.probe(tmp_path / 'nope.mp4', name='cam9')
  junk = tmp_path / 'x.mp4'
  junk.write_bytes(np.random.default_rng(0).integers(0, 256, 50_000, np.uint8).tobytes())
  with pytest.raises(VideoError, match=r'x\.mp4.*re-encode'):
    video.probe(junk)
  with pytest.raises(VideoError, match=r'x\.mp4'):
    video.SyncedFrames([junk], progress=False)
  with pytest.raises(VideoError, match='folder'):
    video.probe(tmp_path)


def test_truncated_file_fails_mid_file_naming_file_and_frame(tmp_path):
  # A truncated AVI keeps its header's count (30) but only the first frames decode.
  path = write_clip(tmp_path / 'cut.avi', 30, 30)
  data = path.read_bytes()
  path.write_bytes(data[:len(data) // 2])
  frames = video.SyncedFrames([path], progress=False, names=['camX'])
  assert len(frames) == 30
  with pytest.raises(VideoError, match=r'camX \(.*cut\.avi\): frame 1\d of 30'):
    list(frames)


# -- resampling --------------------------------------------------------------------------

def reference_indices(num_frames, fps_in, fps_out):
  """Nearest source frame in time, ties to the earlier, in exact rational arithmetic."""
  fps_in, fps_out = fractions.Fraction(fps_in), fractions.Fraction(fps_out)
  count = math.floor((num_frames - 1) * fps_out / fps_in) + 1
  out = []
  for k in range(count):
    x = k * fps_in / fps_out                 # the instant k / fps_out in source frames
    out.append(math.ceil(x - fractions.Fraction(1, 2)))
  return np.array(out, np.int64)


def test_resample_indices_integer_ratios():
  np.testing.assert_array_equal(video.resample_indices(7, 30, 30), np.arange(7))
  np.testing.assert_array_equal(video.resample_indices(10, 60, 30), [0, 2, 4, 6, 8])
  np.testing.assert_array_equal(video.resample_indices(11, 60, 30), [0, 2, 4, 6, 8, 10])
  np.testing.assert_array_equal(video.resample_indices(4, 30, 60), [0, 0, 1, 1, 2, 2, 3])
  np.testing.assert_array_equal(video.resample_indices(3, 30, 90), [0, 0, 1, 1, 1, 2, 2])
  assert video.resample_indices(0, 30, 60).shape == (0,)
  np.testing.assert_array_equal(video.resample_indices(1, 60, 25), [0])


@pytest.mark.parametrize('fps_in,fps_out', [(25, 60), (60, 25), (30, 25), (25, 30),
                                            (50, 60), (60, 24), (24, 60), (100, 30)])
@pytest.mark.parametrize('num_frames', [1, 2, 7, 100, 241])
def test_resample_indices_non_integer_ratios(fps_in, fps_out, num_frames):
  got = video.resample_indices(num_frames, fps_in, fps_out)
  np.testing.assert_array_equal(got, reference_indices(num_frames, fps_in, fps_out))
  assert len(got) == (num_frames - 1) * fps_out // fps_in + 1    # first to last frame
  assert (len(got) - 1) / fps_out <= (num_frames - 1) / fps_in < len(got) / fps_out
  assert got.dtype == np.int64 and got[0] == 0 and got[-1] <= num_frames - 1
  assert np.all(np.diff(got) >= 0)
  assert np.all(np.abs(got / fps_in - np.arange(len(got)) / fps_out) <= 0.5 / fps_in + 1e-12)


def test_resample_indices_ntsc_and_errors():
  ntsc = 30000 / 1001
  got = video.resample_indices(3000, ntsc, 30)
  np.testing.assert_array_equal(got, reference_indices(3000, fractions.Fraction(30000, 1001), 30))
  # 60 -> 25 fps: output k is the instant k / 25 s = source frame 2.4 k.
  assert video.resample_indices(100, 60, 25)[:6].tolist() == [0, 2, 5, 7, 10, 12]
  assert video.resample_indices(100, 25, 60)[:6].tolist() == [0, 0, 1, 1, 2, 2]
  for bad in (0, -1, math.nan, math.inf):
    with pytest.raises(ValueError):
      video.resample_indices(10, bad, 30)
    with pytest.raises(ValueError):
      video.resample_indices(10, 30, bad)


# -- SyncedFrames ------------------------------------------------------------------------

def test_upsample_30_to_60_repeats_frames(clips):
  frames = video.SyncedFrames([clips['30']], fps_out=60, progress=False)
  assert len(frames) == 79
  got = decoded(frames)
  assert [k for k, _ in got] == list(range(79))
  assert [i for _, (i,) in got] == np.repeat(np.arange(40), 2)[:-1].tolist()


def test_downsample_60_to_30_takes_every_second(clips):
  got = decoded(video.SyncedFrames([clips['60']], fps_out=30, progress=False))
  assert [i for _, (i,) in got] == list(range(0, 80, 2))


def test_two_files_are_synchronised(clips):
  # An MJPEG .avi and an MPEG-4 .mp4 at 30 fps, resampled to 25 fps.
  frames = video.SyncedFrames([clips['30'], clips['30b']], fps_out=25, progress=False)
  got = decoded(frames)
  expected = video.resample_indices(40, 30, 25).tolist()
  assert len(frames) == len(expected) == 33
  assert [a for _, (a, b) in got] == [b for _, (a, b) in got] == expected
  assert frames.names == ['a30', 'b30']


def test_start_and_num_frames(clips):
  frames = video.SyncedFrames([clips['30']], fps_out=60, start=5, num_frames=4, progress=False)
  assert len(frames) == 4
  assert decoded(frames) == [(5, [2]), (6, [3]), (7, [3]), (8, [4])]
  assert len(video.SyncedFrames([clips['30']], start=35, num_frames=100, progress=False)) == 5
  with pytest.raises(ValueError, match='start'):
    video.SyncedFrames([clips['30']], start=41, progress=False)


def test_frames_are_rgb_read_only_and_repeats_share_the_array(clips):
  it = iter(video.SyncedFrames([clips['30']], fps_out=60, progress=False))
  (_, [a]), (_, [b]), (_, [c]) = next(it), next(it), next(it)
  assert a is b and c is not a
  assert a.shape == (H, W, 3) and a.dtype == np.uint8 and a.flags.c_contiguous
  with pytest.raises(ValueError, match='read-only'):
    a[0, 0] = 0


def test_iterator_keeps_no_old_frames(clips):
  it = iter(video.SyncedFrames([clips['30'], clips['30b']], progress=False))
  _, first = next(it)
  refs = [weakref.ref(f) for f in first]
  del first
  next(it)
  gc.collect()
  assert all(r() is None for r in refs)


def test_memory_does_not_grow_with_length(tmp_path):
  short = write_clip(tmp_path / 'short.avi', 40, 30)
  long = write_clip(tmp_path / 'long.avi', 120, 30)

  def peak(path):
    frames = video.SyncedFrames([path, path], progress=False)
    gc.collect()
    tracemalloc.start()
    count = sum(1 for _ in frames)
    result = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return count, result

  peak(short)   # warm-up: one-time allocations (imports, codec tables) are not per frame
  (n_short, p_short), (n_long, p_long) = peak(short), peak(long)
  assert (n_short, n_long) == (40, 120)
  assert p_short >= 2 * W * H * 3       # numpy buffers are traced: two cameras' frames
  assert p_long <= 1.5 * p_short, (p_short, p_long)


def test_progress_bar_names_cameras(clips, capsys):
  list(video.SyncedFrames([clips['30'], clips['30b']], progress=True, names=['left', 'right']))
  err = capsys.readouterr().err
  assert 'left,right' in err and '40/40' in err


def test_synced_frames_checks_the_videos(clips):
  with pytest.raises(VideoError, match=r'frame rate.*a30\.avi.*a60\.avi'):
    video.SyncedFrames([clips['30'], clips['60']], progress=False)
  with pytest.raises(VideoError, match=r'length.*80 frames.*79 frames'):
    video.SyncedFrames([clips['60'], clips['60short']], progress=False)
  frames = video.SyncedFrames([clips['60'], clips['60short']], frame_tolerance=1,
                              progress=False)
  assert len(frames) == 79


# -- check_videos ------------------------------------------------------------------------

def info(path='a.mp4', width=1920, height=1080, fps=60.0, num_frames=100):
  return VideoInfo(path=path, width=width, height=height, fps=fps, num_frames=num_frames,
                   codec='h264')


def test_check_videos_agreement():
  video.check_videos([info('a.mp4'), info('b.mp4', fps=60.005)], ['c1', 'c2'])
  with pytest.raises(VideoError, match=r'c1 \(a\.mp4\) 60 fps.*c2 \(b\.mp4\) 59\.94 fps'):
    video.check_videos([info('a.mp4'), info('b.mp4', fps=59.94)], ['c1', 'c2'])
  with pytest.raises(VideoError, match=r'c1 \(a\.mp4\) 100 frames.*c3 \(c\.mp4\) 98 frames'):
    video.check_videos([info('a.mp4'), info('b.mp4'), info('c.mp4', num_frames=98)],
                       ['c1', 'c2', 'c3'])
  video.check_videos([info('a.mp4'), info('c.mp4', num_frames=98)], ['c1', 'c3'],
                     frame_tolerance=2)
  with pytest.raises(ValueError):
    video.check_videos([info()], ['c1', 'c2'])


def test_check_videos_sizes():
  infos = [info('a.mp4'), info('b.mp4', width=1080, height=1920)]
  video.check_videos(infos, ['c1', 'c2'], [(1920, 1080), (1080, 1920)])
  # Codec padding: 1080 decoded, 1088 calibrated (the Pose2Sim demo's cam01, cam02).
  video.check_videos(infos, ['c1', 'c2'], [(1920, 1088), (1088, 1920)])
  with pytest.raises(VideoError, match=r'c2: video b\.mp4 is 1080x1920'):
    video.check_videos(infos, ['c1', 'c2'], [(1920, 1080), (1088, 1920)], block=1)
  with pytest.raises(VideoError, match=r'c2: video b\.mp4 is 1080x1920.*rotated by 90'):
    video.check_videos(infos, ['c1', 'c2'], [(1920, 1080), (1920, 1080)])
  with pytest.raises(VideoError, match=r'c1: video a\.mp4 is 1920x1080.*1280x720.*resolution'):
    video.check_videos(infos, ['c1', 'c2'], [(1280, 720), (1080, 1920)])
  with pytest.raises(VideoError, match=r'c1: video a\.mp4 .*1000x1000.*camera order'):
    video.check_videos(infos, ['c1', 'c2'], [(1000, 1000), (1080, 1920)])


# -- the Pose2Sim demo (network on first use) ----------------------------------------------

def test_pose2sim_demo_capture():
  from banet_jax.capture import demo
  try:
    folder = demo.demo_capture_dir()
  except demo.DemoFetchError as e:
    pytest.skip(f'PyPI unreachable, cannot fetch the Pose2Sim demo: {e}')
  assert folder.name == 'Demo_SinglePerson'
  assert (folder / 'calibration' / 'Calib.qca.txt').is_file()
  paths = sorted((folder / 'videos').glob('*.mp4'))
  assert [p.stem for p in paths] == ['cam01', 'cam02', 'cam03', 'cam04']
  infos = [video.probe(p) for p in paths]
  assert [(i.width, i.height, i.fps, i.num_frames) for i in infos] == (
      [(1080, 1920, 60.0, 100)] * 2 + [(1088, 1920, 60.0, 100)] * 2)
  assert infos[1].codec == 'VP90' and infos[0].codec == 'h264'
  # The calibration (fov_video) is 1088x1920 for every camera: padding, accepted.
  video.check_videos(infos, [p.stem for p in paths], [(1088, 1920)] * 4)
  frames = video.read_frames(paths[1], [0, 99])   # VP9 decodes to the end
  assert frames.shape == (2, 1920, 1080, 3) and frames.std() > 10
  assert demo.demo_capture_dir() == folder       # cached
