"""Generates the project's full-body OpenSim model from `fullbody_table.py`.

    python -m banet_jax.skeleton.models.build_fullbody [--out PATH]

writes `banet_jax/skeleton/models/banet_fullbody.osim` by default. The output is
deterministic: the same table gives a byte-identical file (the test suite checks
that the committed file equals a fresh build).

Requires the `opensim` Python package (4.x). The table itself does not.
"""

from __future__ import annotations

import argparse
import math
import pathlib
import sys

from banet_jax.skeleton.models import fullbody_table as T

DEFAULT_OUT = pathlib.Path(__file__).resolve().parent / 'banet_fullbody.osim'


# ----------------------------------------------------------------------------
# Small geometry helpers (plain Python: no numpy needed)
# ----------------------------------------------------------------------------

def _unit(a):
  n = math.sqrt(sum(x * x for x in a))
  return tuple(x / n for x in a)


def _cross(a, b):
  return (a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0])


def _dot(a, b):
  return sum(x * y for x, y in zip(a, b))


def frame_from_z(axis):
  """Columns (x, y, z) of a right-handed frame whose z is `axis`.

  x is the parent x axis made orthogonal to z (the parent y axis when z is close to
  x), so the construction is deterministic.
  """
  z = _unit(axis)
  ref = (1.0, 0.0, 0.0) if abs(z[0]) < 0.9 else (0.0, 1.0, 0.0)
  x = _unit(tuple(r - _dot(ref, z) * zz for r, zz in zip(ref, z)))
  y = _cross(z, x)
  return x, y, z


def frame_from_xy(x_axis, y_axis):
  """Columns of a right-handed frame with the given (orthogonal) x and y."""
  x = _unit(x_axis)
  y = _unit(y_axis)
  if abs(_dot(x, y)) > 1e-9:
    raise ValueError(f'axes {x_axis} and {y_axis} are not orthogonal')
  return x, y, _cross(x, y)


def body_fixed_xyz(columns):
  """Body-fixed X-Y-Z Euler angles (OpenSim frame `orientation`) of R = [x y z]."""
  x, y, z = columns
  # R[i][j] = columns[j][i]
  r02, r12, r22 = z[0], z[1], z[2]
  r01, r00 = y[0], x[0]
  b = math.asin(max(-1.0, min(1.0, r02)))
  a = math.atan2(-r12, r22)
  c = math.atan2(-r01, r00)
  return tuple(T._r(v, T.ROUND_ANGLE) for v in (a, b, c))


# ----------------------------------------------------------------------------
# Model construction
# ----------------------------------------------------------------------------

def _vec3(osim, v):
  return osim.Vec3(float(v[0]), float(v[1]), float(v[2]))


def _function(osim, spec):
  kind = spec[0]
  if kind == 'linear':
    return osim.LinearFunction(1.0, 0.0)
  if kind == 'constant':
    return osim.Constant(float(spec[1]))
  if kind == 'spline':
    spline = osim.SimmSpline()
    for x, y in zip(spec[1], spec[2]):
      spline.addPoint(float(x), float(y))
    return spline
  raise ValueError(f'unknown function spec {spec!r}')


def _custom_joint(osim, model, spec, bodies):
  st = osim.SpatialTransform()
  for i, ax in enumerate(spec.axes):
    ta = st.updTransformAxis(i)
    ta.setAxis(_vec3(osim, ax.axis))
    names = osim.ArrayStr()
    if ax.coordinate is not None:
      names.append(ax.coordinate)
    ta.setCoordinateNames(names)
    # Pitfall: getTransformAxis(i).setFunction(f) segfaults later; set_function on
    # the mutable axis is safe.
    ta.set_function(_function(osim, ax.function))
  parent = model.getGround() if spec.parent == 'ground' else bodies[spec.parent]
  zero = osim.Vec3(0.0, 0.0, 0.0)
  return osim.CustomJoint(spec.name, parent, _vec3(osim, spec.location_in_parent), zero,
                          bodies[spec.child], _vec3(osim, spec.location_in_child), zero, st)


def _pin_or_universal(osim, model, spec, bodies):
  if spec.kind == 'PinJoint':
    columns = frame_from_z(spec.axes[0])
    cls = osim.PinJoint
  else:
    columns = frame_from_xy(spec.axes[0], spec.axes[1])
    cls = osim.UniversalJoint
  orientation = _vec3(osim, body_fixed_xyz(columns))
  joint = cls(spec.name, bodies[spec.parent], _vec3(osim, spec.location_in_parent), orientation,
              bodies[spec.child], _vec3(osim, spec.location_in_child), orientation)
  for i, name in enumerate(spec.coordinates):
    joint.upd_coordinates(i).setName(name)
  return joint


def build_model():
  """Returns the opensim.Model described by `fullbody_table` (connections finalised)."""
  import opensim as osim

  model = osim.Model()
  model.setName(T.MODEL_NAME)
  model.set_credits(T.MODEL_CREDITS)
  model.set_publications(T.MODEL_PUBLICATIONS)
  model.set_length_units('meters')
  model.set_force_units('N')
  model.setGravity(_vec3(osim, T.GRAVITY))

  bodies = {}
  for b in T.BODIES:
    ixx, iyy, izz, ixy, ixz, iyz = b.inertia
    body = osim.Body(b.name, b.mass, _vec3(osim, b.mass_center),
                     osim.Inertia(ixx, iyy, izz, ixy, ixz, iyz))
    model.addBody(body)
    bodies[b.name] = body

  for spec in T.JOINTS:
    if spec.kind == 'CustomJoint':
      joint = _custom_joint(osim, model, spec, bodies)
    else:
      joint = _pin_or_universal(osim, model, spec, bodies)
    model.addJoint(joint)

  coords = model.updCoordinateSet()
  for c in T.COORDINATES:
    coord = coords.get(c.name)
    coord.setRangeMin(c.lower)
    coord.setRangeMax(c.upper)
    coord.setDefaultValue(c.default)
    coord.set_clamped(T.CLAMP_COORDINATES)
    coord.set_locked(False)

  for name, independent, dependent in T.COUPLERS:
    con = osim.CoordinateCouplerConstraint()
    con.setName(name)
    names = osim.ArrayStr()
    names.append(independent)
    con.setIndependentCoordinateNames(names)
    con.setDependentCoordinateName(dependent)
    con.setFunction(osim.LinearFunction(1.0, 0.0))
    model.addConstraint(con)

  for m in T.MARKERS:
    model.addMarker(osim.Marker(m.name, bodies[m.body], _vec3(osim, m.location)))

  model.finalizeConnections()
  return model


def _check(model):
  """Cheap consistency checks before writing."""
  got = [model.getCoordinateSet().get(i).getName()
         for i in range(model.getCoordinateSet().getSize())]
  if tuple(got) != T.COORDINATE_NAMES:
    raise RuntimeError(f'coordinate order differs from the table: {got}')


def write_model(out: pathlib.Path | str = DEFAULT_OUT) -> pathlib.Path:
  out = pathlib.Path(out)
  out.parent.mkdir(parents=True, exist_ok=True)
  model = build_model()
  _check(model)
  if not model.printToXML(str(out)):
    raise RuntimeError(f'OpenSim could not write {out}')
  return out


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--out', type=pathlib.Path, default=DEFAULT_OUT,
                      help=f'output .osim path (default: {DEFAULT_OUT})')
  args = parser.parse_args(argv)
  path = write_model(args.out)
  print(f'wrote {path}')
  return 0


if __name__ == '__main__':
  sys.exit(main())
