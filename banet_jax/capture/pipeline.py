"""Calibrated camera videos -> the two-view clips BANet consumes, plus every view's landmarks.

    calib = calibration.load_calibration('Calib.qca.txt')
    capture = open_capture(['cam01.mp4', 'cam02.mp4', 'cam03.mp4', 'cam04.mp4'], calib,
                           network_cameras=('cam01', 'cam04'))
    for segment in capture.segments(crop_size=64):
      predictor.predict_clip(segment.clip)          # banet_jax.inference
    capture.landmarks, capture.visibility           # (C, T, 33, 2) / (C, T, 33), all cameras

`network_cameras` is one pair, or a list of pairs (`[('cam01', 'cam04'), ('cam02',
'cam03')]`): the crops of every camera in them are cut once per frame, and each segment
holds one clip per pair (`Segment.clips`), for BANet on each (`predict.predict_capture`
averages the pairs' coordinates).

Contract:
* Videos are matched to calibration cameras by name (`match_videos`): the file stem equals a
  camera name (case-insensitive) or contains exactly one; or the caller names them.
  Frame counts, rates and sizes are checked against each other and the calibration
  (`video.check_videos`) before anything is decoded.
* Frames are decoded once, in order, resampled to `fps` (the model's rate, 60 for ODAH)
  and never held beyond one output frame, except a short buffer of the first
  `select_frames` frames while the person is chosen; crops are kept per segment of
  `segment_frames` frames. A 10-minute pair therefore runs in bounded memory (the
  per-frame landmarks, 4 x 33 x 3 numbers per camera, are kept for the whole video).
* Person: BlazePose tracks every candidate in every camera (`persons.PersonTracker`); over
  the first frames the one person seen consistently by all cameras through the
  calibration is chosen (`persons.select_person`: the most central person in the images,
  or the one nearest a world point `near`) and followed by track id, or, when a
  track is lost and found again, by the candidate nearest its last position. A frame where
  a network camera does not see the person (BlazePose lost it, or its mask is empty)
  repeats that camera's previous crop, for at most `max_held_frames` frames in a row
  (listed in `report['held_frames']`); a first frame without the person, a longer gap, or
  an empty mask of the user's own is an error naming the camera, file and frame.
* Left and right: with three or more cameras, a frame where one camera's BlazePose has
  exchanged the body's sides (upper and lower body judged apart) is corrected as it is
  decoded, when the other cameras' triangulation says so (`placement.left_right_swaps`);
  `report['left_right_swaps']` lists the source frames per camera and body half.
* Masks: BlazePose's segmentation (threshold 0.5) by default, or the user's own masks: a
  folder of PNG files (one per source video frame, sorted by name, nonzero = person) or a
  mask video per network camera, in the distorted frame like the video.
* Lens distortion: crops are resampled from the distorted frames as if undistorted
  (`banet_jax.crops`), so the clip's cameras are pinhole cameras: the calibration's `K`
  with its `R, t` (turned, see "Aimed cameras");
  landmarks are kept as the cameras see them (distorted pixels); triangulation undoes the
  distortion.
* Aimed cameras: with `aim_cameras` (the default) each network camera is turned about its
  own centre so that it looks at the person (the centre of the box around the landmarks
  triangulated over the selection frames, `aim_point`) with a level image x axis, as
  every ODAH rig aims its cameras (pitch jitter 4 deg, roll 3 at most in odah/lab); the
  crops are cut from that virtual camera's image (`crops.undistorted_square_crop` with
  `rotation`) and the clip's cameras are the turned ones. The Pose2Sim demo's cam04 is
  rolled 26 degrees on its mount and cam01 13: unturned, the person leans by as much in
  their crops, which ODAH never shows. `report['aimed_cameras']` gives each camera's turn
  and the lean of the world vertical at the person in its real image.
* World: the calibration's (OpenSim ground, metres, y up). The clip's cameras are moved so
  that the person's mean horizontal position is the origin (`report['clip_origin']`): the
  network's visual-hull sampling casts its rays around the world origin
  (`model.sampling.sample_visual_hull_points`), and the prediction does not depend on it.
  With `face_forward` (the default) they are also turned about the vertical so that the
  person faces the clip's +x (`report['clip_heading_deg']`, from the triangulated shoulders
  and hips of the selection frames, `placement.body_heading`): every ODAH subject faces
  +x (pelvis_rotation within +-5 deg in 90 % of odah/lab's training frames), so a network
  trained on it reads the body's heading from the world frame and answers about 0 whatever
  the person does. The network's coordinates are then in the clip's frame;
  `world_coordinates` turns them back (the root orientation only; everything else, and
  the placement that follows, is unchanged).
"""

from __future__ import annotations

import dataclasses
import pathlib
import time
from collections.abc import Iterator, Mapping, Sequence

import cv2
import numpy as np

from banet_jax import crops as crop_lib
from banet_jax import geometry
from banet_jax.capture import persons
from banet_jax.capture import placement
from banet_jax.capture import video as video_lib
from banet_jax.crops import EmptyMaskError

NUM_LANDMARKS = 33
HIPS = (23, 24)


class CaptureError(ValueError):
  """Inputs that cannot make a clip; the message names the file, camera and frame."""


def match_videos(videos: Sequence[str], calibration, names: Sequence[str] | None = None
                 ) -> dict[str, str]:
  """{camera name: video path} for `videos`, in their order.

  Names come from `names` when given, else from each file stem: a camera whose name equals
  the stem (case-insensitive), or the only camera whose name the stem contains.
  """
  available = list(calibration.names)
  if names is not None:
    if len(names) != len(videos):
      raise CaptureError(f'{len(videos)} videos but {len(names)} camera names {list(names)}')
    out = dict(zip(names, videos))
  else:
    out = {}
    for path in videos:
      stem = pathlib.Path(path).stem.lower()
      exact = [n for n in available if n.lower() == stem]
      inside = [n for n in available if n.lower() in stem]
      found = exact or (inside if len(inside) == 1 else [])
      if not found:
        raise CaptureError(f'{path}: no camera of {calibration.source} is named after this file '
                           f'(cameras: {available}); rename the file or pass the camera names')
      out[found[0]] = path
    if len(out) != len(videos):
      raise CaptureError(f'two videos map to the same camera: {list(videos)}')
  for name, path in out.items():
    if name not in available:
      raise CaptureError(f'{path}: camera {name!r} is not in the calibration {calibration.source} '
                         f'(cameras: {available})')
  return out


@dataclasses.dataclass
class Segment:
  """Consecutive output frames [start, stop) of the network cameras.

  clips: {'camA+camB': clip} per camera pair, in `Capture.pairs` order; a clip is the
  ODAH-style inputs of `banet_jax.inference` (crops (2, n, S, S, 3) uint8, masks (2, n, S,
  S) uint8, crop_meta (2, n, 3), camera_K/R/t (2, ...)).
  """
  start: int
  stop: int
  clips: dict[str, dict]

  @property
  def clip(self) -> dict:
    """The first pair's clip (the only one with a single pair)."""
    return next(iter(self.clips.values()))


def pair_name(pair: Sequence[str]) -> str:
  """'camA+camB', the key of a pair's clip in `Segment.clips`."""
  return '+'.join(pair)


def pair_cameras(pairs: Sequence[Sequence[str]]) -> tuple[str, ...]:
  """Every camera of the pairs, once, in order of first appearance: the network cameras
  whose crops are cut (and the order `masks` of the command line follow)."""
  return tuple(dict.fromkeys(n for pair in pairs for n in pair))


class _UserMasks:
  """Masks of one camera from a folder of images or a video, read in step with the frames."""

  def __init__(self, path: str, camera: str, size: tuple[int, int]):
    self.path, self.camera, self.size = pathlib.Path(path), camera, size
    if self.path.is_dir():
      self.files = sorted(p for p in self.path.iterdir()
                          if p.suffix.lower() in ('.png', '.jpg', '.jpeg', '.bmp', '.tif'))
      if not self.files:
        raise CaptureError(f'{path}: no mask image in this folder (camera {camera})')
      self.capture = None
    elif self.path.is_file():
      self.files, self.capture, self.next_index = None, cv2.VideoCapture(str(path)), 0
      if not self.capture.isOpened():
        raise CaptureError(f'{path}: cannot open this mask video (camera {camera})')
    else:
      raise CaptureError(f'{path}: no such mask folder or video (camera {camera})')

  def get(self, source_frame: int) -> np.ndarray:
    if self.files is not None:
      if source_frame >= len(self.files):
        raise CaptureError(f'{self.path}: {len(self.files)} mask images, but frame {source_frame} '
                           f'is needed (camera {self.camera})')
      image = cv2.imread(str(self.files[source_frame]), cv2.IMREAD_GRAYSCALE)
    else:
      image = None
      while self.next_index <= source_frame:
        ok, image = self.capture.read()
        if not ok:
          raise CaptureError(f'{self.path}: the mask video ends before frame {source_frame} '
                             f'(camera {self.camera})')
        self.next_index += 1
      image = image.max(axis=-1)
    if image is None:
      raise CaptureError(f'{self.path}: cannot read the mask of frame {source_frame} '
                         f'(camera {self.camera})')
    if (image.shape[1], image.shape[0]) != tuple(self.size):
      raise CaptureError(f'{self.path}: mask of frame {source_frame} is {image.shape[1]}x'
                         f'{image.shape[0]}, the video {self.size[0]}x{self.size[1]} '
                         f'(camera {self.camera})')
    return image > 0


class Capture:
  """A calibrated multi-camera video, opened and checked (see the module docstring)."""

  def __init__(self, videos: Mapping[str, str], calibration,
               network_cameras: Sequence[str] | Sequence[Sequence[str]],
               *, fps: float = 60.0, start: int = 0, num_frames: int | None = None,
               masks: Mapping[str, str] | None = None, pose: persons.BlazePose | None = None,
               select_frames: int = 10, near=None, max_held_frames: int = 15,
               face_forward: bool = True, aim_cameras: bool = True, progress: bool = True):
    self.names = list(videos)
    given = list(network_cameras)
    self.pairs = ([tuple(given)] if all(isinstance(n, str) for n in given) else
                  [tuple(pair) for pair in given])
    for pair in self.pairs:
      if len(pair) != 2 or len(set(pair)) != 2 or not all(isinstance(n, str) for n in pair):
        raise CaptureError(f'BANet needs two different cameras, got {list(pair)} (network '
                           f'cameras: one pair, or a list of pairs)')
    if len(set(self.pairs)) != len(self.pairs):
      raise CaptureError(f'a camera pair is given twice: {given}')
    self.network_cameras = pair_cameras(self.pairs)  # their crops are cut
    for name in self.network_cameras:
      if name not in videos:
        raise CaptureError(f'camera {name!r} has no video (videos for {self.names})')
    self.calibration = calibration.select(self.names)
    self.paths = [str(videos[n]) for n in self.names]
    self.frames = video_lib.SyncedFrames(self.paths, fps_out=fps, start=start,
                                         num_frames=num_frames, progress=progress,
                                         names=self.names)  # probes and checks the videos
    self.infos = self.frames.infos
    video_lib.check_videos(self.infos, self.names,
                           [tuple(c.size) for c in self.calibration.cameras])
    self.fps = float(fps)
    self.num_frames = len(self.frames)
    if self.num_frames < 1:
      raise CaptureError(f'no frame to process in {self.paths} from output frame {start}')
    self.source_frames = self.frames.source_indices  # (T,) source frame of each output frame
    unknown = sorted(set(masks or {}) - set(self.network_cameras))
    if unknown:
      raise CaptureError(f'masks given for {unknown}, which are not network cameras '
                         f'{list(self.network_cameras)}')
    self.user_masks = {name: _UserMasks(path, name, self.infos[self.names.index(name)].size)
                       for name, path in (masks or {}).items()}
    self.pose = pose or persons.BlazePose()
    self.trackers = [persons.PersonTracker(self.pose) for _ in self.names]
    self.select_frames = max(1, min(select_frames, self.num_frames))
    self.face_forward = bool(face_forward)
    self.aim_cameras = bool(aim_cameras)
    self._turns = None  # {network camera: (3, 3) rotation or None}, set after the selection
    self._selection_points = None  # landmarks triangulated over the selection frames
    self.near = None if near is None else np.asarray(near, np.float64)
    c = len(self.names)
    self.landmarks = np.full((c, self.num_frames, NUM_LANDMARKS, 2), np.nan, np.float32)
    self.visibility = np.zeros((c, self.num_frames, NUM_LANDMARKS), np.float32)
    self.timings = {'decode': 0.0, 'masks': 0.0, 'crops': 0.0}
    self.report = {'cameras': self.names, 'network_cameras': list(self.network_cameras),
                   'pairs': [list(pair) for pair in self.pairs],
                   'videos': self.paths, 'fps': self.fps, 'frames': self.num_frames,
                   'source_frames': [int(self.source_frames[0]), int(self.source_frames[-1])],
                   'held_frames': {n: [] for n in self.network_cameras},
                   'left_right_swaps': {},
                   'calibration': {'source': calibration.source, 'format': calibration.format,
                                   'floor_known': calibration.floor_known,
                                   'notes': list(calibration.notes)}}
    self.thumbnails: dict[int, list[np.ndarray]] = {}
    self._chosen: list[int | None] = [None] * c
    self._last_hip = [None] * c
    self._last_crop = {}
    self.max_held_frames = max_held_frames
    self._held_run = {name: 0 for name in self.network_cameras}

  # --- person choice ---------------------------------------------------------------------

  def _choose(self, observations: list[list[list]]) -> None:
    """Picks the person from the buffered candidates of the first frames."""
    tracks = []
    for c, frames in enumerate(observations):
      tracks.append(persons.tracks_from_steps(frames))
      if not tracks[-1][0]:
        raise CaptureError(f'camera {self.names[c]} ({self.paths[c]}): no person found in '
                           f'frames {self.source_frames[0]}-{self.source_frames[len(frames) - 1]}')
    try:
      kwargs = {} if self.near is None else {'near': self.near}
      chosen, report = persons.select_person([t[1] for t in tracks], self.calibration.cameras,
                                             names=self.names, **kwargs)
    except persons.PersonSelectionError as e:
      raise CaptureError(f'{e} (videos {self.paths})') from e
    self._chosen = [tracks[c][0][k] for c, k in enumerate(chosen)]
    self.report['person'] = {'track_per_camera': dict(zip(self.names, map(int, self._chosen))),
                             'candidates_per_camera': {n: len(t[0]) for n, t in
                                                       zip(self.names, tracks)},
                             'selection': _jsonable(report)}

  def _pick(self, c: int, obs: list):
    """The chosen person's observation among a camera's candidates (None if not seen)."""
    match = next((o for o in obs if o.track_id == self._chosen[c]), None)
    if match is None and obs and self._last_hip[c] is not None:
      height = max(float(np.ptp(self._last_hip[c][1])), 1.0)
      dist = [np.linalg.norm(o.landmarks[list(HIPS)].mean(0) - self._last_hip[c][0]) for o in obs]
      k = int(np.argmin(dist))
      if dist[k] < 0.25 * height:
        match, self._chosen[c] = obs[k], obs[k].track_id
    if match is not None:
      self._last_hip[c] = (match.landmarks[list(HIPS)].mean(0), match.landmarks[:, 1])
    return match

  # --- frames --------------------------------------------------------------------------

  def _network_inputs(self, c: int, frame_index: int, image: np.ndarray, obs, crop_size: int):
    name = self.names[c]
    cam = self.calibration.cameras[c]
    t0 = time.perf_counter()
    if name in self.user_masks:
      mask = self.user_masks[name].get(int(self.source_frames[frame_index]))
    elif obs is not None:
      mask = persons.person_mask(obs)
    else:
      mask = None
    self.timings['masks'] += time.perf_counter() - t0
    t0 = time.perf_counter()
    source_frame = int(self.source_frames[frame_index])
    try:
      if mask is None:
        raise EmptyMaskError('the person is not seen')
      out = crop_lib.undistorted_square_crop(image, mask, cam.K, cam.dist, crop_size,
                                             rotation=self.camera_turns()[name])
      self._last_crop[name], self._held_run[name] = out, 0
    except EmptyMaskError as e:
      where = f'camera {name} ({self.paths[c]}), frame {source_frame}'
      if name in self.user_masks:
        raise CaptureError(f'{where}: the mask in {self.user_masks[name].path} is empty') from e
      if name not in self._last_crop:
        raise CaptureError(f'{where}: {e}; start where the person is in view (--start) or '
                           'give masks (--masks)') from e
      self._held_run[name] += 1
      if self._held_run[name] > self.max_held_frames:
        raise CaptureError(f'{where}: the person has not been seen for {self._held_run[name]} '
                           'frames; cut the video (--start, --num_frames) to where the person '
                           'is in view') from e
      self.report['held_frames'][name].append(source_frame)
      out = self._last_crop[name]
    self.timings['crops'] += time.perf_counter() - t0
    return out

  def segments(self, crop_size: int, segment_frames: int = 256,
               thumbnail_frames: Sequence[int] = (), thumbnail_width: int = 240
               ) -> Iterator[Segment]:
    """Processes the video once, yielding the network clip segment by segment.

    `thumbnail_frames` (output frame indices) are kept, downscaled to `thumbnail_width`
    pixels wide, in `self.thumbnails[frame]` (one RGB image per camera) for overlays.
    """
    net = [self.names.index(n) for n in self.network_cameras]
    buffer, crops = [], []
    thumbs = set(int(f) for f in thumbnail_frames)
    t_decode = time.perf_counter()
    for k, images in self.frames:
      f = k - self.frames.start  # frames are counted from --start here
      self.timings['decode'] += time.perf_counter() - t_decode
      t0 = time.perf_counter()
      observations = [tracker.step(image) for tracker, image in zip(self.trackers, images)]
      self.timings['masks'] += time.perf_counter() - t0
      if f in thumbs:
        self.thumbnails[f] = [cv2.resize(im, (thumbnail_width, round(
            im.shape[0] * thumbnail_width / im.shape[1])), interpolation=cv2.INTER_AREA)
                              for im in images]
      if f < self.select_frames:
        buffer.append((images, observations))
        if len(buffer) == self.select_frames:
          self._choose([[b[1][c] for b in buffer] for c in range(len(self.names))])
          # Every selection frame's landmarks first: the cameras are aimed from them.
          picked = [self._observe(g, obs) for g, (_, obs) in enumerate(buffer)]
          for g, ((imgs, _), p) in enumerate(zip(buffer, picked)):
            crops.append(self._network_crops(g, imgs, p, net, crop_size))
          buffer = []
      else:
        picked = self._observe(f, observations)
        crops.append(self._network_crops(f, images, picked, net, crop_size))
      if len(crops) >= segment_frames or (f == self.num_frames - 1 and crops):
        stop = f + 1
        yield Segment(stop - len(crops), stop,
                      {pair_name(pair): self._clip(crops, pair) for pair in self.pairs})
        crops = []
      t_decode = time.perf_counter()
    self.report['timings_s'] = dict(self.timings)

  def _observe(self, f: int, observations) -> list:
    """Records frame f's landmarks of the chosen person (sides corrected); returns the
    chosen observation per camera (None where not seen)."""
    picked = [self._pick(c, obs) for c, obs in enumerate(observations)]
    for c, obs in enumerate(picked):
      if obs is not None:
        self.landmarks[c, f] = obs.landmarks
        self.visibility[c, f] = obs.visibility
    self._correct_sides(f)
    return picked

  def _network_crops(self, f: int, images, picked, net, crop_size) -> list:
    return [self._network_inputs(c, f, images[c], picked[c], crop_size) for c in net]

  def _correct_sides(self, f: int) -> None:
    """Undoes a detector's left/right exchange in frame f where the other cameras outvote
    it (`placement.left_right_swaps`; three or more cameras), and reports the frame."""
    if len(self.names) < 3:
      return
    window = slice(f, f + 1)
    swapped = placement.left_right_swaps(self.landmarks[:, window], self.visibility[:, window],
                                         self.calibration.cameras)
    if not swapped.any():
      return
    self.landmarks[:, window], self.visibility[:, window] = placement.exchange_sides(
        self.landmarks[:, window], self.visibility[:, window], swapped)
    record = self.report['left_right_swaps']
    for c, g in zip(*np.nonzero(swapped[:, 0])):
      frames = record.setdefault(self.names[c], {}).setdefault(placement.SWAP_GROUPS[g], [])
      frames.append(int(self.source_frames[f]))

  def _clip(self, crops, pair) -> dict:
    """The clip of one camera pair from per-frame crops of every network camera."""
    views = [self.network_cameras.index(n) for n in pair]
    cams = [self.calibration.cameras[self.names.index(n)] for n in pair]
    origin = self.clip_origin()
    turn = placement.vertical_rotation(np.radians(self.clip_heading_deg()))
    extrinsics = []
    for name, c in zip(pair, cams):
      aim = self.camera_turns()[name]
      extrinsics.append((c.R, c.t) if aim is None else (aim @ c.R, aim @ c.t))
    return {'crops': np.stack([[x[v][0] for x in crops] for v in views]),
            'masks': np.stack([[x[v][1] for x in crops] for v in views]),
            'crop_meta': np.stack([[x[v][2] for x in crops] for v in views]),
            'camera_K': np.stack([c.K for c in cams]).astype(np.float32),
            # A world point X is origin + turn @ X' in the clip's frame X':
            # R X + t = (R turn) X' + (t + R origin).
            'camera_R': np.stack([r @ turn for r, _ in extrinsics]).astype(np.float32),
            'camera_t': np.stack([t + r @ origin for r, t in extrinsics]).astype(np.float32)}

  def camera_turns(self) -> dict[str, np.ndarray | None]:
    """{network camera: (3, 3) rotation that aims it at `aim_point` with a level image x
    axis (x_aimed = rotation @ x_camera), or None (not aimed)}; fixed for the whole
    capture once the selection frames are in (module docstring, "Aimed cameras")."""
    if self._turns is None:
      self._turns = {name: None for name in self.network_cameras}
      target = self.aim_point()
      aimed = {}
      for name in self.network_cameras:
        cam = self.calibration.cameras[self.names.index(name)]
        entry = {'vertical_lean_deg': None, 'turned_by_deg': 0.0}
        if target is not None:
          entry['vertical_lean_deg'] = vertical_lean_deg(cam.K, cam.R, cam.t, target)
        if target is not None and self.aim_cameras:
          try:
            R, _ = geometry.look_at(geometry.camera_center(cam.R, cam.t), target)
          except ValueError:  # looking straight down at the person: leave it as it is
            R = None
          if R is not None:
            self._turns[name] = R @ cam.R.T
            cos = (np.trace(self._turns[name]) - 1.0) / 2.0
            entry['turned_by_deg'] = float(np.degrees(np.arccos(np.clip(cos, -1.0, 1.0))))
        aimed[name] = entry
      self.report['aimed_cameras'] = aimed
    return self._turns

  def aim_point(self) -> np.ndarray | None:
    """(3,) the world point the network cameras are aimed at: the centre of the box around
    the landmarks triangulated over the selection frames (head to feet; an ODAH rig aims at
    the centre of the box around the body over its clip). None when none was triangulated."""
    if 'aim_point' not in self.report:
      points = self._selection().reshape(-1, 3)
      points = points[np.all(np.isfinite(points), axis=1)]
      self.report['aim_point'] = (None if points.size == 0 else
                                  (0.5 * (points.min(axis=0) + points.max(axis=0))).tolist())
    point = self.report['aim_point']
    return None if point is None else np.asarray(point)

  def clip_heading_deg(self) -> float:
    """The angle (deg) the clip's frame is turned by about the vertical: the person's mean
    heading over the selection frames (`placement.body_heading`), 0 without
    `face_forward` or when no shoulders and hips were triangulated."""
    if 'clip_heading_deg' not in self.report:
      heading = 0.0
      if self.face_forward:
        heading = placement.mean_heading(placement.body_heading(self._selection()))
      self.report['clip_heading_deg'] = float(np.degrees(heading))
    return self.report['clip_heading_deg']

  def world_coordinates(self, skel, coordinates) -> np.ndarray:
    """(T, C) coordinates predicted from this capture's clips -> the calibration world's
    orientation (the root turned back by `clip_heading_deg`; `placement.turn_about_vertical`)."""
    return placement.turn_about_vertical(skel, coordinates, np.radians(self.clip_heading_deg()))

  def clip_origin(self) -> np.ndarray:
    """(3,) the world point the clip's cameras are centred on: the person's mean hip centre
    over the selection frames, on the floor plane (y = 0)."""
    if 'clip_origin' not in self.report:
      hips = self._selection()[:, list(HIPS)].reshape(-1, 3)
      hips = hips[np.all(np.isfinite(hips), axis=1)]
      origin = np.zeros(3) if hips.size == 0 else hips.mean(axis=0) * np.array([1.0, 0.0, 1.0])
      self.report['clip_origin'] = origin.tolist()
    return np.asarray(self.report['clip_origin'])

  def _selection(self) -> np.ndarray:
    """(select_frames, 33, 3) the landmarks triangulated over the selection frames, once
    (their landmarks are final by the first clip: chosen, side-corrected)."""
    if self._selection_points is None:
      self._selection_points = self.triangulate(frames=slice(0, self.select_frames))[0]
    return self._selection_points

  # --- landmarks -----------------------------------------------------------------------

  def triangulate(self, frames=slice(None), **kwargs):
    """World landmarks (T, 33, 3) and cameras used (T, 33) from all cameras
    (`placement.triangulate_landmarks`)."""
    return placement.triangulate_landmarks(self.landmarks[:, frames], self.visibility[:, frames],
                                           self.calibration.cameras, **kwargs)


def vertical_lean_deg(K, R, t, point, height_m: float = 0.5) -> float:
  """How far (deg) the world vertical through `point` leans in a pinhole camera's image:
  0 upright, positive when its top leans towards image +x (to the right)."""
  top = np.asarray(point, np.float64) + np.array([0.0, height_m, 0.0])
  a, b = geometry.project(np.stack([np.asarray(point, np.float64), top]), K, R, t)
  d = b - a
  return float(np.degrees(np.arctan2(d[0], -d[1])))


def _jsonable(value):
  if isinstance(value, dict):
    return {str(k): _jsonable(v) for k, v in value.items()}
  if isinstance(value, (list, tuple)):
    return [_jsonable(v) for v in value]
  if isinstance(value, np.ndarray):
    return value.tolist()
  if isinstance(value, np.generic):
    return value.item()
  return value


def open_capture(videos: Sequence[str], calibration,
                 network_cameras: Sequence[str] | Sequence[Sequence[str]] | None = None,
                 *, camera_names: Sequence[str] | None = None, **kwargs) -> Capture:
  """`Capture` of `videos` (paths) with a loaded calibration; the network cameras (a pair
  or a list of pairs) default to the first two videos."""
  mapping = match_videos(videos, calibration, camera_names)
  network_cameras = tuple(network_cameras or list(mapping)[:2])
  return Capture(mapping, calibration, network_cameras, **kwargs)
