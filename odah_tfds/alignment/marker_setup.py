"""Marker weights for inverse kinematics and the ScaleTool measurement set.

Both are written for the project model (`banet_fullbody.osim`, 63 markers, see
`banet_jax/skeleton/models/README.md`); the tables are plain data so that the
OpenSim reference path (`opensim_scaling`, `opensim_ik`) and the JAX fast path
(`banet_jax.skeleton.ik`) use exactly the same numbers.

IK weights follow the convention of the authors' predecessor pipeline (D3KE,
Bittner et al. 2023: 20 for bony landmarks, 10 for joint centres, 1 for soft
markers), adapted to this model's rigid segments:

* 'bony' (20): skin points over palpable bony landmarks that stay fixed on
  their model body (pelvis spines, epicondyles, malleoli, heel and metatarsal
  heads, styloids, metacarpal heads, sternum and spinous processes).
* 'joint' (10): joint centres (HJC, KJC, AJC, SJC, EJC, WJC). On a body mesh
  they come from the body model's rig rather than from the skin.
* 'soft' (1): landmarks that the model cannot follow exactly: the head markers
  (the model's torso carries the head rigidly, a mesh has a neck), the acromion
  (moves with the scapula, which the model lacks), the greater trochanter (deep
  under soft tissue, slides with hip rotation) and the hallux tip (soft tip of
  a one-marker segment).

The measurement set scales every body on every axis from marker-pair distances
(OpenSim `ModelScaler` 'measurements' order: factor = mean over the pairs of
subject distance / model distance). The pairs are chosen within one body (or
one group of bodies that share the factor) and as close as possible to the
body axis they scale, so that a subject built from the model by per-body
scaling is recovered exactly (see `README.md` for the table and the few pairs
that mix axes).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence

import numpy as np

# ---- IK weights ------------------------------------------------------------------

CLASS_WEIGHTS: dict[str, float] = {'bony': 20.0, 'joint': 10.0, 'soft': 1.0}

# Class of each marker name without its side prefix (R/L), plus the midline ones.
_SIDED_CLASSES = {
    'ASI': 'bony', 'PSI': 'bony', 'HJC': 'joint', 'GTR': 'soft', 'LFC': 'bony',
    'MFC': 'bony', 'KJC': 'joint', 'LMAL': 'bony', 'MMAL': 'bony', 'AJC': 'joint',
    'CAL': 'bony', 'TOE': 'bony', 'MT1': 'bony', 'MT5': 'bony', 'HLX': 'soft',
    'ACR': 'soft', 'SJC': 'joint', 'LEL': 'bony', 'MEL': 'bony', 'EJC': 'joint',
    'WRB': 'bony', 'WRA': 'bony', 'WJC': 'joint', 'MCP2': 'bony', 'MCP5': 'bony',
    'FHD': 'soft', 'BHD': 'soft', 'HEAD': 'soft',
}
_MIDLINE_CLASSES = {
    'C7': 'bony', 'CLAV': 'bony', 'STRN': 'bony', 'T10': 'bony',
    'FHEAD': 'soft', 'BHEAD': 'soft', 'HEAD_TOP': 'soft',
}


def _build_classes() -> dict[str, str]:
  out = {}
  for side in ('R', 'L'):
    for name, cls in _SIDED_CLASSES.items():
      out[side + name] = cls
  out.update(_MIDLINE_CLASSES)
  return out


MARKER_CLASSES: dict[str, str] = _build_classes()


def marker_class(name: str) -> str:
  """'bony', 'joint' or 'soft' for a project-model marker name."""
  try:
    return MARKER_CLASSES[name]
  except KeyError:
    raise KeyError(f'no IK weight class for marker {name!r}; known markers: '
                   f'{sorted(MARKER_CLASSES)}') from None


def ik_weights(marker_names: Sequence[str] | None = None,
               default: float | None = None) -> dict[str, float]:
  """{marker name: IK weight} for the given names (default: all project markers).

  Names that are not project markers raise KeyError, or get `default` if given.
  """
  names = list(MARKER_CLASSES) if marker_names is None else list(marker_names)
  if default is not None:
    return {n: CLASS_WEIGHTS[MARKER_CLASSES[n]] if n in MARKER_CLASSES else float(default)
            for n in names}
  return {n: CLASS_WEIGHTS[marker_class(n)] for n in names}


def ik_weight_array(marker_names: Sequence[str],
                    weights: Mapping[str, float] | Sequence[float] | np.ndarray | None = None
                    ) -> np.ndarray:
  """(M,) float64 weights aligned with `marker_names`.

  `weights` may be None (the project convention, `ik_weights`), a {name: weight}
  mapping (every name must be present), or an (M,) sequence already aligned.
  Weights must be finite and >= 0.
  """
  names = list(marker_names)
  if weights is None:
    out = np.array([CLASS_WEIGHTS[marker_class(n)] for n in names], np.float64)
  elif isinstance(weights, Mapping):
    missing = [n for n in names if n not in weights]
    if missing:
      raise KeyError(f'weights has no entry for markers {missing}')
    out = np.array([float(weights[n]) for n in names], np.float64)
  else:
    out = np.asarray(weights, np.float64)
    if out.shape != (len(names),):
      raise ValueError(f'weights must have shape ({len(names)},) (one per marker), '
                       f'got {out.shape}')
  if not np.all(np.isfinite(out)) or np.any(out < 0):
    raise ValueError(f'weights must be finite and >= 0, got {out}')
  return out


# ---- scaling measurements ------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Measurement:
  """One ScaleTool measurement: a factor from marker pairs, applied to body axes.

  Attributes:
    name: the measurement's name in the setup file.
    marker_pairs: pairs of marker names; the factor is the mean over the pairs of
      (distance in the static trial) / (distance on the generic model).
    body_axes: (body name, axes) pairs, axes a string of 'X', 'Y', 'Z'.
  """

  name: str
  marker_pairs: tuple[tuple[str, str], ...]
  body_axes: tuple[tuple[str, str], ...]

  @property
  def marker_names(self) -> tuple[str, ...]:
    return tuple(dict.fromkeys(m for pair in self.marker_pairs for m in pair))


def _side(side: str) -> tuple[str, str]:
  return ('R', 'r') if side == 'r' else ('L', 'l')


def _limb_measurements(side: str) -> list[Measurement]:
  m, s = _side(side)
  return [
      Measurement(f'femur_{s}_length', ((f'{m}HJC', f'{m}KJC'),),
                  ((f'femur_{s}', 'XY'), (f'patella_{s}', 'XYZ'))),
      Measurement(f'femur_{s}_width', ((f'{m}LFC', f'{m}MFC'),), ((f'femur_{s}', 'Z'),)),
      Measurement(f'tibia_{s}_length', ((f'{m}KJC', f'{m}AJC'),), ((f'tibia_{s}', 'XY'),)),
      Measurement(f'tibia_{s}_width', ((f'{m}LMAL', f'{m}MMAL'),), ((f'tibia_{s}', 'Z'),)),
      Measurement(f'foot_{s}_length', ((f'{m}CAL', f'{m}TOE'),),
                  ((f'talus_{s}', 'XYZ'), (f'calcn_{s}', 'XY'), (f'toes_{s}', 'XY'))),
      Measurement(f'foot_{s}_width', ((f'{m}MT1', f'{m}MT5'),),
                  ((f'calcn_{s}', 'Z'), (f'toes_{s}', 'Z'))),
      Measurement(f'humerus_{s}_length', ((f'{m}SJC', f'{m}EJC'),), ((f'humerus_{s}', 'XY'),)),
      Measurement(f'humerus_{s}_width', ((f'{m}LEL', f'{m}MEL'),), ((f'humerus_{s}', 'Z'),)),
      Measurement(f'forearm_{s}_length', ((f'{m}EJC', f'{m}WJC'),),
                  ((f'ulna_{s}', 'XY'), (f'radius_{s}', 'XY'))),
      Measurement(f'forearm_{s}_width', ((f'{m}WRA', f'{m}WRB'),),
                  ((f'ulna_{s}', 'Z'), (f'radius_{s}', 'Z'))),
      Measurement(f'hand_{s}_length', ((f'{m}WJC', f'{m}MCP2'), (f'{m}WJC', f'{m}MCP5')),
                  ((f'hand_{s}', 'XY'),)),
      Measurement(f'hand_{s}_width', ((f'{m}MCP2', f'{m}MCP5'),), ((f'hand_{s}', 'Z'),)),
  ]


def _merge_sides(right: Measurement, left: Measurement) -> Measurement:
  return Measurement(right.name.replace('_r_', '_'),
                     right.marker_pairs + left.marker_pairs,
                     right.body_axes + left.body_axes)


def scaling_measurements(symmetric: bool = False) -> tuple[Measurement, ...]:
  """The project model's measurement set: every body, every axis, exactly once.

  Args:
    symmetric: False (default): one measurement per side, so the left and right
      segments get their own factors. True: left and right pairs are averaged
      into one measurement applied to both sides (the usual choice with noisy
      real markers).
  """
  trunk = [
      Measurement('pelvis_width', (('RASI', 'LASI'), ('RHJC', 'LHJC')), (('pelvis', 'Z'),)),
      Measurement('pelvis_depth', (('RASI', 'RPSI'), ('LASI', 'LPSI')), (('pelvis', 'X'),)),
      # Trunk height from hip to shoulder centres, for the pelvis and the torso alike:
      # short within-segment pairs (ASIS-HJC ~7 cm, CLAV-STRN) let a few mm of landmark
      # error become 10-40 % of height and put the shoulders ~10 cm off a body mesh's.
      Measurement('trunk_height', (('RHJC', 'RSJC'), ('LHJC', 'LSJC')),
                  (('pelvis', 'Y'), ('torso', 'Y'))),
      Measurement('torso_depth', (('STRN', 'T10'),), (('torso', 'X'),)),
      Measurement('torso_width', (('RACR', 'LACR'), ('RSJC', 'LSJC')), (('torso', 'Z'),)),
  ]
  right, left = _limb_measurements('r'), _limb_measurements('l')
  limbs = ([_merge_sides(r, l) for r, l in zip(right, left)] if symmetric
           else right + left)
  return tuple(trunk + limbs)


def check_measurements(measurements: Sequence[Measurement], body_names: Sequence[str],
                       marker_names: Sequence[str]) -> None:
  """Raises ValueError unless every body axis is scaled by exactly one measurement
  and every marker of a pair exists."""
  known_markers = set(marker_names)
  seen: dict[tuple[str, str], str] = {}
  for meas in measurements:
    if not meas.marker_pairs:
      raise ValueError(f'measurement {meas.name!r} has no marker pairs')
    missing = [n for n in meas.marker_names if n not in known_markers]
    if missing:
      raise ValueError(f'measurement {meas.name!r} uses markers {missing} that are not '
                       'in the marker set')
    for body, axes in meas.body_axes:
      if body not in body_names:
        raise ValueError(f'measurement {meas.name!r} scales unknown body {body!r}')
      for axis in axes:
        if axis not in 'XYZ':
          raise ValueError(f'measurement {meas.name!r}: axis {axis!r} is not X, Y or Z')
        if (body, axis) in seen:
          raise ValueError(f'{body} {axis} is scaled by both {seen[(body, axis)]!r} and '
                           f'{meas.name!r}')
        seen[(body, axis)] = meas.name
  unscaled = [f'{b} {a}' for b in body_names for a in 'XYZ' if (b, a) not in seen]
  if unscaled:
    raise ValueError(f'no measurement scales {unscaled}')


def measurement_factors(measurements: Sequence[Measurement], subject: Mapping[str, np.ndarray],
                        model: Mapping[str, np.ndarray]) -> dict[str, float]:
  """The factor of each measurement as OpenSim's ModelScaler computes it.

  Args:
    measurements: the set.
    subject: {marker: (3,) or (F, 3)} static-trial positions (frames are averaged
      per pair distance, as the ModelScaler averages the trial's frames).
    model: {marker: (3,)} generic model marker positions in its default pose.

  Returns:
    {measurement name: mean over pairs of subject distance / model distance}.
  """
  out = {}
  for meas in measurements:
    ratios = []
    for a, b in meas.marker_pairs:
      exp = np.linalg.norm(np.atleast_2d(subject[a]).mean(0) - np.atleast_2d(subject[b]).mean(0))
      ref = np.linalg.norm(np.asarray(model[a]) - np.asarray(model[b]))
      ratios.append(exp / ref)
    out[meas.name] = float(np.mean(ratios))
  return out


def body_scale_factors(measurements: Sequence[Measurement], factors: Mapping[str, float],
                       body_names: Sequence[str]) -> np.ndarray:
  """(B, 3) per-body x/y/z factors from per-measurement factors (1 where unscaled)."""
  out = np.ones((len(body_names), 3), np.float64)
  index = {b: i for i, b in enumerate(body_names)}
  for meas in measurements:
    for body, axes in meas.body_axes:
      for axis in axes:
        out[index[body], 'XYZ'.index(axis)] = factors[meas.name]
  return out
