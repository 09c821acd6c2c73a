"""Parse an OpenSim 4.x `.osim` file into a `Skeleton`, without the opensim package.

Only what changes kinematics is read: bodies (mass centres), Ground, physical
offset frames, joints and their coordinates, coordinate-coupler constraints and
markers. Forces, muscles, geometry, controllers, probes and contact are skipped.
Anything that would change kinematics but is not supported raises `OsimError`
naming the file and the element, so a model is never silently mis-read.
"""

from __future__ import annotations

import collections
import hashlib
import os
import threading
import warnings
from xml.parsers import expat
import xml.etree.ElementTree as ET

import numpy as np

from banet_jax.skeleton import functions as fn
from banet_jax.skeleton.skeleton import (AxisMotion, Coupler, JointSpec, Skeleton,
                                         body_fixed_xyz)

SUPPORTED_JOINTS = ('CustomJoint', 'PinJoint', 'SliderJoint', 'UniversalJoint',
                    'BallJoint', 'GimbalJoint', 'FreeJoint', 'PlanarJoint',
                    'WeldJoint')
SUPPORTED_FUNCTIONS = ('Constant', 'LinearFunction', 'SimmSpline',
                       'NaturalCubicSpline', 'PolynomialFunction',
                       'MultiplierFunction', 'PiecewiseLinearFunction')
# Constraints that only act when OpenSim assembles a state: they never change the
# pose that given coordinates produce, so forward kinematics does not need them.
_ASSEMBLY_ONLY_CONSTRAINTS = ('WeldConstraint', 'PointConstraint',
                              'PointOnLineConstraint', 'ConstantDistanceConstraint',
                              'RollingOnSurfaceConstraint')

_X, _Y, _Z = np.eye(3)

# Fixed axes of the non-Custom joints, as Simbody's mobilizers define them:
# (rotation axes in body-fixed order, translation axes), each a coordinate slot.
_JOINT_AXES = {
    'PinJoint': ((_Z,), ()),
    'SliderJoint': ((), (_X,)),
    'UniversalJoint': ((_X, _Y), ()),
    'BallJoint': ((_X, _Y, _Z), ()),
    'GimbalJoint': ((_X, _Y, _Z), ()),
    'FreeJoint': ((_X, _Y, _Z), (_X, _Y, _Z)),
    'PlanarJoint': ((_Z,), (_X, _Y)),
    'WeldJoint': ((), ()),
}


class OsimError(ValueError):
  """A model file that cannot be turned into a Skeleton; names file and element."""

  def __init__(self, path: str, element: str, message: str):
    self.path, self.element = path, element
    super().__init__(f'{path}: {element}: {message}')


# The loaded skeletons, keyed by (absolute path, sha256 of the bytes read): loading the
# same unchanged file again returns the same object without parsing it again, and a
# changed file is parsed anew. Bounded: ODAH's label pipeline loads one scaled model per
# subject (~0.3 MB each).
_LOADED: collections.OrderedDict[tuple[str, str], Skeleton] = collections.OrderedDict()
_LOADED_MAX = 32
_LOADED_LOCK = threading.Lock()  # input pipelines and worker threads may load at once


def load_osim(path: str | os.PathLike) -> Skeleton:
  """Reads an OpenSim 4.x `.osim` file (cached by path and content).

  The one constructor of `Skeleton`. Its `content_hash` is the sha256 of the file's
  bytes, which is the skeleton's identity: every cache and compiled function keyed on
  a skeleton is shared by all skeletons loaded from identical bytes. Warnings about the
  file are given when it is parsed, i.e. once per content.

  Raises:
    FileNotFoundError: the file does not exist.
    OsimError: malformed XML, an older file format, an unsupported element that
      changes kinematics, or an inconsistent model (unknown names, cycles, ...).
  """
  path = os.fspath(path)
  if not os.path.isfile(path):
    raise FileNotFoundError(f'{path}: no such OpenSim model file')
  with open(path, 'rb') as f:
    data = f.read()
  key = (os.path.abspath(path), hashlib.sha256(data).hexdigest())
  with _LOADED_LOCK:
    if key in _LOADED:
      _LOADED.move_to_end(key)
      return _LOADED[key]
  try:
    root = _parse_xml_bytes(data)
  except expat.ExpatError as e:
    raise OsimError(path, 'XML', f'malformed XML ({e})') from None
  skel = _Parser(path, root, key[1]).build()
  with _LOADED_LOCK:
    skel = _LOADED.setdefault(key, skel)  # a concurrent load of the same file: keep one
    _LOADED.move_to_end(key)
    while len(_LOADED) > _LOADED_MAX:
      _LOADED.popitem(last=False)
  return skel


def file_sha256(path: str | os.PathLike) -> str:
  """sha256 (hex) of a file's bytes: the `content_hash` a skeleton loaded from it has."""
  with open(path, 'rb') as f:
    return hashlib.sha256(f.read()).hexdigest()


def _parse_xml(path: str) -> ET.Element:
  """The element tree of the file at `path` (see `_parse_xml_bytes`)."""
  with open(path, 'rb') as f:
    return _parse_xml_bytes(f.read())


def _parse_xml_bytes(data: bytes) -> ET.Element:
  """The file's element tree, read as OpenSim reads it: without XML namespaces.

  OpenSim names nested classes with C++ scope, e.g. `<HuntCrossleyForce::
  ContactParametersSet>` in every model with contact forces that OpenSim 4 writes.
  That is a well-formed XML 1.0 name but not a namespace-valid one, and
  `ET.parse` (expat with namespace processing) refuses it as an invalid token.
  Expat without namespace processing reads it, and builds the same ElementTree
  elements.
  """
  builder = ET.TreeBuilder()
  parser = expat.ParserCreate()  # no namespace_separator: names are kept verbatim
  parser.StartElementHandler = builder.start
  parser.EndElementHandler = builder.end
  parser.CharacterDataHandler = builder.data
  parser.buffer_text = True
  parser.Parse(data, True)
  return builder.close()


def _describe(elem) -> str:
  name = elem.get('name')
  return f'<{elem.tag} name="{name}">' if name is not None else f'<{elem.tag}>'


class _Parser:
  """One pass over the XML tree; build() returns the Skeleton."""

  def __init__(self, path: str, root: ET.Element, content_hash: str):
    self.path, self.content_hash = path, content_hash
    if root.tag != 'OpenSimDocument':
      raise OsimError(path, _describe(root), 'not an OpenSim document '
                      '(root element must be <OpenSimDocument>)')
    version = root.get('Version', '')
    try:
      version_number = int(version)
    except ValueError:
      raise OsimError(path, '<OpenSimDocument>',
                      f'missing or invalid Version attribute {version!r}') from None
    models = root.findall('Model')
    if len(models) != 1:
      raise OsimError(path, '<OpenSimDocument>',
                      f'expected exactly one <Model>, found {len(models)}')
    self.model = models[0]
    if version_number < 40000 or self.model.find('.//Body/joint') is not None:
      raise OsimError(path, f'<OpenSimDocument Version="{version}">',
                      'OpenSim 3.x file format is not supported; open it once with '
                      'OpenSim 4 (e.g. opensim.Model(path).printToXML(new_path)) to '
                      'convert it')
    self.index: dict[str, ET.Element] = {}  # component path -> element
    self.paths: dict[int, str] = {}  # id(element) -> component path
    self._walk(self.model, '')
    self._frames: dict[str, tuple[int, np.ndarray, np.ndarray]] = {}
    self._resolving: set[str] = set()

  # ---- helpers -----------------------------------------------------------
  def error(self, elem, message) -> OsimError:
    where = _describe(elem) if isinstance(elem, ET.Element) else str(elem)
    path = self.paths.get(id(elem)) if isinstance(elem, ET.Element) else None
    if path:
      where += f' at {path}'
    return OsimError(self.path, where, message)

  def _walk(self, elem, path):
    for child in elem:
      if not isinstance(child.tag, str):
        continue
      name = child.get('name')
      if name is not None:
        child_path = f'{path}/{name}'
        self.index.setdefault(child_path, child)
        self.paths[id(child)] = child_path
        self._walk(child, child_path)
      else:  # property wrappers such as <objects>, <frames>, <components>
        self._walk(child, path)

  def text(self, elem, tag, default=None) -> str | None:
    child = elem.find(tag)
    if child is None or child.text is None:
      return default
    return child.text.strip()

  def floats(self, elem, tag, count=None, default=None) -> np.ndarray:
    raw = self.text(elem, tag)
    if raw is None:
      if default is not None:
        return np.asarray(default, np.float64)
      raise self.error(elem, f'missing <{tag}>')
    try:
      values = np.array([float(v) for v in raw.split()], np.float64)
    except ValueError:
      raise self.error(elem, f'<{tag}> holds non-numeric text {raw[:60]!r}') from None
    if count is not None and values.size != count:
      raise self.error(elem, f'<{tag}> needs {count} numbers, got {values.size}')
    if not np.all(np.isfinite(values)):
      raise self.error(elem, f'<{tag}> holds non-finite numbers')
    return values

  def flag(self, elem, tag, default: bool) -> bool:
    raw = self.text(elem, tag)
    if raw is None or raw == '':
      return default
    if raw.lower() in ('true', '1'):
      return True
    if raw.lower() in ('false', '0'):
      return False
    raise self.error(elem, f'<{tag}> must be true or false, got {raw!r}')

  def resolve(self, owner, socket_tag) -> ET.Element:
    """The element a socket of `owner` points to (OpenSim component path rules)."""
    raw = self.text(owner, socket_tag)
    if not raw:
      raise self.error(owner, f'missing <{socket_tag}>')
    if raw.startswith('/'):
      parts = []
    else:
      parts = [p for p in self.paths.get(id(owner), '').split('/') if p]
    for part in raw.split('/'):
      if part in ('', '.'):
        continue
      if part == '..':
        if not parts:
          raise self.error(owner, f'<{socket_tag}> path {raw!r} leaves the model')
        parts.pop()
      else:
        parts.append(part)
    target = self.index.get('/' + '/'.join(parts))
    if target is None:
      # OpenSim 4.0 files may name a frame by its bare name: accept a unique match.
      name = raw.rstrip('/').split('/')[-1]
      matches = [e for e in self.index.values()
                 if e.get('name') == name and _is_frame_tag(e.tag)]
      if len(matches) == 1:
        target = matches[0]
    if target is None:
      raise self.error(owner, f'<{socket_tag}> names {raw!r}, which is not in the model')
    return target

  # ---- frames ------------------------------------------------------------
  def frame(self, elem) -> tuple[int, np.ndarray, np.ndarray]:
    """(base body index or -1 for ground, R_base_frame (3,3), A (3,3): origin = A @ s)."""
    key = self.paths[id(elem)]
    if key in self._frames:
      return self._frames[key]
    if elem.tag == 'Ground':
      result = (-1, np.eye(3), np.zeros((3, 3)))
    elif elem.tag == 'Body':
      result = (self.body_index[key], np.eye(3), np.zeros((3, 3)))
    elif elem.tag == 'PhysicalOffsetFrame':
      if key in self._resolving:
        raise self.error(elem, 'offset frames form a cycle')
      self._resolving.add(key)
      base, rotation, offset = self.frame(self.resolve(elem, 'socket_parent'))
      self._resolving.discard(key)
      translation = self.floats(elem, 'translation', 3, default=np.zeros(3))
      orientation = self.floats(elem, 'orientation', 3, default=np.zeros(3))
      # OpenSim scales the translation element-wise by the base body's factors.
      result = (base, rotation @ body_fixed_xyz(orientation),
                offset + rotation @ np.diag(translation))
    else:
      raise self.error(elem, 'this frame type is not supported (supported: Ground, '
                       'Body, PhysicalOffsetFrame)')
    self._frames[key] = result
    return result

  # ---- build -------------------------------------------------------------
  def build(self) -> Skeleton:
    elements = list(self.index.values())
    ground = [e for e in elements if e.tag == 'Ground']
    if len(ground) > 1:
      raise self.error(ground[1], 'a model has one Ground')
    bodies = [e for e in elements if e.tag == 'Body']
    body_names = tuple(b.get('name') for b in bodies)
    _check_unique(self, bodies, 'body')
    self.body_index = {self.paths[id(b)]: i for i, b in enumerate(bodies)}
    mass_centers = np.stack([self.floats(b, 'mass_center', 3, default=np.zeros(3))
                             for b in bodies]) if bodies else np.zeros((0, 3))

    joint_elems = [e for e in elements if e.tag.endswith('Joint')]
    _check_unique(self, joint_elems, 'joint')
    coords: list[dict] = []
    joints = [self.joint(j, coords) for j in joint_elems]
    coord_names = tuple(c['name'] for c in coords)
    dup = {n for n in coord_names if coord_names.count(n) > 1}
    if dup:
      raise OsimError(self.path, '<Coordinate>', f'duplicate coordinate names {sorted(dup)}')
    order = self.joint_order(joints, body_names)

    couplers = self.couplers(elements, coords, joints)
    dependent = np.zeros(len(coords), bool)
    for c in couplers:
      dependent[c.dependent] = True

    markers = [e for e in elements if e.tag == 'Marker']
    _check_unique(self, markers, 'marker')
    marker_bodies, marker_offsets = [], []
    for m in markers:
      base, rotation, offset = self.frame(self.resolve_frame(m, 'socket_parent_frame'))
      location = self.floats(m, 'location', 3, default=np.zeros(3))
      marker_bodies.append(base)
      marker_offsets.append(offset + rotation @ np.diag(location))

    for e in elements:
      if e.tag in _ASSEMBLY_ONLY_CONSTRAINTS and self.flag(e, 'isEnforced', True):
        warnings.warn(f'{self.path}: {_describe(e)} is only enforced when OpenSim '
                      'assembles a state; forward kinematics ignores it', stacklevel=3)

    return Skeleton(
        source=self.path,
        content_hash=self.content_hash,
        model_name=self.model.get('name', ''),
        coordinate_names=coord_names,
        coordinate_ranges=np.array([c['range'] for c in coords], np.float64).reshape(-1, 2),
        default_coordinates=np.array([c['default'] for c in coords], np.float64),
        coordinate_motion_types=tuple(c['motion'] for c in coords),
        locked=np.array([c['locked'] for c in coords], bool),
        clamped=np.array([c['clamped'] for c in coords], bool),
        dependent=dependent,
        body_names=body_names,
        body_mass_centers=mass_centers,
        joint_names=tuple(j.name for j in joints),
        marker_names=tuple(m.get('name') for m in markers),
        marker_bodies=np.array(marker_bodies, np.int32),
        marker_offsets=np.array(marker_offsets, np.float64).reshape(-1, 3, 3),
        joints=tuple(joints),
        joint_order=tuple(order),
        couplers=tuple(couplers),
    )

  def resolve_frame(self, owner, socket_tag):
    target = self.resolve(owner, socket_tag)
    if not _is_frame_tag(target.tag):
      raise self.error(owner, f'<{socket_tag}> points to {_describe(target)}, '
                       'which is not a frame')
    return target

  # ---- joints ------------------------------------------------------------
  def joint(self, elem, coords: list[dict]) -> JointSpec:
    kind = elem.tag
    if kind not in SUPPORTED_JOINTS:
      raise self.error(elem, f'unsupported joint type {kind} (supported: '
                       f'{", ".join(SUPPORTED_JOINTS)})')
    if self.flag(elem, 'reverse', False):
      raise self.error(elem, 'reversed joints (<reverse>true</reverse>) are not supported')
    parent_base, parent_r, parent_a = self.frame(self.resolve_frame(elem, 'socket_parent_frame'))
    child_base, child_r, child_a = self.frame(self.resolve_frame(elem, 'socket_child_frame'))
    if child_base < 0:
      raise self.error(elem, 'its child frame is attached to Ground; reversed trees '
                       'are not supported')
    if child_base == parent_base:
      raise self.error(elem, 'parent and child frames are on the same body')

    listed = [c for c in elem.findall('coordinates/Coordinate')]
    first = len(coords)
    local = {}
    for c in listed:
      local[c.get('name')] = len(coords)
      coords.append(self.coordinate(c))

    if kind == 'CustomJoint':
      rotations, translations = self.spatial_transform(elem, coords, local)
      for index in local.values():
        coords[index]['motion'] = _custom_motion_type(index, rotations, translations)
    else:
      axes_r, axes_t = _JOINT_AXES[kind]
      needed = len(axes_r) + len(axes_t)
      if len(listed) != needed:
        raise self.error(elem, f'{kind} needs {needed} coordinates, file lists {len(listed)}')
      identity = fn.Linear(1.0, 0.0)
      rotations = tuple(AxisMotion(a, identity, first + i) for i, a in enumerate(axes_r))
      translations = tuple(AxisMotion(a, identity, first + len(axes_r) + i)
                           for i, a in enumerate(axes_t))
      for i in range(needed):
        coords[first + i]['motion'] = 'rotational' if i < len(axes_r) else 'translational'
    return JointSpec(
        name=elem.get('name'), kind=kind,
        parent_body=parent_base, child_body=child_base,
        parent_rotation=parent_r, parent_offset=parent_a,
        child_rotation=child_r, child_offset=child_a,
        rotations=rotations, translations=translations)

  def coordinate(self, elem) -> dict:
    if not elem.get('name'):
      raise self.error(elem, 'coordinate without a name')
    default = self.floats(elem, 'default_value', 1, default=[0.0])[0]
    value_range = self.floats(elem, 'range', 2, default=[-10.0, 10.0])
    if value_range[0] > value_range[1]:
      raise self.error(elem, f'<range> minimum {value_range[0]} exceeds maximum {value_range[1]}')
    return dict(name=elem.get('name'), default=default, range=value_range,
                locked=self.flag(elem, 'locked', False),
                clamped=self.flag(elem, 'clamped', False), motion='coupled')

  def spatial_transform(self, joint, coords, local):
    st = joint.find('SpatialTransform')
    if st is None:
      raise self.error(joint, 'CustomJoint without <SpatialTransform>')
    axes = {a.get('name'): a for a in st.findall('TransformAxis')}
    unknown = set(axes) - {'rotation1', 'rotation2', 'rotation3',
                           'translation1', 'translation2', 'translation3'}
    if unknown:
      raise self.error(joint, f'unknown TransformAxis names {sorted(unknown)}')
    defaults = (_X, _Y, _Z)
    parsed = {'rotation': [], 'translation': []}
    for group in ('rotation', 'translation'):
      raw_axes = []
      for k in range(3):
        elem = axes.get(f'{group}{k + 1}')
        if elem is None:
          raw_axes.append(defaults[k])
          continue
        raw = self.floats(elem, 'axis', 3, default=defaults[k])
        norm = np.linalg.norm(raw)
        if norm < 1e-12:
          raise self.error(elem, '<axis> has zero length')
        raw_axes.append(raw)
        names = (self.text(elem, 'coordinates') or '').split()
        if len(names) > 1:
          raise self.error(elem, f'functions of several coordinates {names} are not supported')
        function = self.function_of(elem)
        if names:
          if names[0] not in local:
            # CustomJoint creates coordinates named only in its axes, with defaults.
            local[names[0]] = len(coords)
            coords.append(dict(name=names[0], default=0.0, range=np.array([-10.0, 10.0]),
                               locked=False, clamped=False, motion='coupled'))
          coordinate = local[names[0]]
          function = function or fn.Linear(1.0, 0.0)
        else:
          coordinate = -1
          function = function or fn.Constant(0.0)
          if not function.is_constant:
            raise self.error(elem, 'a non-constant function needs a coordinate in <coordinates>')
        if function.is_constant and isinstance(function, fn.Constant) and function.value == 0.0:
          continue  # no motion along this axis
        scale_axis = None
        if group == 'translation' and not function.is_identity:
          # OpenSim 4.6 scales the function by sum_i |axis_i| * s_i with the axis as
          # written in the file (not normalised), even for factors of one.
          scale_axis = np.abs(raw)
        parsed[group].append(AxisMotion(raw / norm, function, coordinate, scale_axis))
      for i in range(3):  # OpenSim refuses collinear axes (CustomJoint::extendFinalizeFromProperties)
        for j in range(i + 1, 3):
          if np.linalg.norm(np.cross(raw_axes[i], raw_axes[j])) < 1e-5:
            raise self.error(joint, f'{group} axes {i + 1} and {j + 1} are collinear')
    return tuple(parsed['rotation']), tuple(parsed['translation'])

  # ---- functions ---------------------------------------------------------
  def function_of(self, owner) -> fn.Function | None:
    """The function held by `owner` (directly or in a <function> wrapper), or None."""
    candidates = [c for c in owner if isinstance(c.tag, str)
                  and (c.tag in SUPPORTED_FUNCTIONS or _looks_like_function(c.tag))]
    wrapper = owner.find('function')
    if wrapper is not None:
      candidates += [c for c in wrapper if isinstance(c.tag, str)]
    if not candidates:
      return None
    if len(candidates) > 1:
      raise self.error(owner, 'holds more than one function')
    return self.function(candidates[0])

  def function(self, elem) -> fn.Function:
    kind = elem.tag
    try:
      if kind == 'Constant':
        return fn.Constant(float(self.floats(elem, 'value', 1, default=[0.0])[0]))
      if kind == 'LinearFunction':
        slope, intercept = self.floats(elem, 'coefficients', 2, default=[1.0, 0.0])
        return fn.Linear(float(slope), float(intercept))
      if kind == 'PolynomialFunction':
        coefficients = self.floats(elem, 'coefficients', default=[0.0])
        if coefficients.size == 0:
          raise self.error(elem, '<coefficients> is empty')
        return fn.Polynomial(tuple(float(c) for c in coefficients))
      if kind == 'MultiplierFunction':
        inner = self.function_of(elem)
        if inner is None:
          raise self.error(elem, 'MultiplierFunction without an inner function')
        return fn.Multiplier(inner, float(self.floats(elem, 'scale', 1, default=[1.0])[0]))
      if kind in ('SimmSpline', 'NaturalCubicSpline', 'PiecewiseLinearFunction'):
        x = self.floats(elem, 'x', default=[])
        y = self.floats(elem, 'y', default=[])
        build = {'SimmSpline': fn.simm_spline,
                 'NaturalCubicSpline': fn.natural_cubic_spline,
                 'PiecewiseLinearFunction': fn.piecewise_linear}[kind]
        return build(x, y)
    except OsimError:
      raise
    except ValueError as e:
      raise self.error(elem, str(e)) from None
    raise self.error(elem, f'unsupported function type {kind} (supported: '
                     f'{", ".join(SUPPORTED_FUNCTIONS)})')

  # ---- topology ----------------------------------------------------------
  def joint_order(self, joints, body_names) -> list[int]:
    child_of: dict[int, int] = {}
    for i, j in enumerate(joints):
      if j.child_body in child_of:
        other = joints[child_of[j.child_body]].name
        raise OsimError(self.path, f'<Body name="{body_names[j.child_body]}">',
                        f'is the child of joints {other!r} and {j.name!r} '
                        '(kinematic loops are not supported)')
      child_of[j.child_body] = i
    for b, name in enumerate(body_names):
      if b not in child_of:
        raise OsimError(self.path, f'<Body name="{name}">',
                        'is not the child of any joint')
    order, placed = [], {-1}
    remaining = list(range(len(joints)))
    while remaining:
      ready = [i for i in remaining if joints[i].parent_body in placed]
      if not ready:
        names = sorted(body_names[joints[i].child_body] for i in remaining)
        raise OsimError(self.path, '<JointSet>',
                        f'the bodies {names} form a cycle not connected to ground')
      for i in ready:
        order.append(i)
        placed.add(joints[i].child_body)
        remaining.remove(i)
    return order

  def couplers(self, elements, coords, joints) -> list[Coupler]:
    names = [c['name'] for c in coords]
    found = []
    for e in elements:
      if e.tag != 'CoordinateCouplerConstraint' or not self.flag(e, 'isEnforced', True):
        continue
      independent = (self.text(e, 'independent_coordinate_names') or '').split()
      dependent = self.text(e, 'dependent_coordinate_name') or ''
      for n in independent + [dependent]:
        if n not in names:
          raise self.error(e, f'unknown coordinate {n!r}')
      if len(independent) != 1:
        raise self.error(e, f'needs exactly one independent coordinate, has {independent}')
      holder = e.find('coupled_coordinates_function')
      function = self.function_of(e if holder is None else holder)
      if function is None:
        raise self.error(e, 'missing <coupled_coordinates_function>')
      dep = names.index(dependent)
      scale_body = -1
      if coords[dep]['motion'] == 'translational':
        owner = next(j for j in joints
                     if any(a.coordinate == dep for a in j.translations))
        scale_body = owner.parent_body
      found.append(Coupler(e.get('name', ''), dep, names.index(independent[0]), function,
                           float(self.floats(e, 'scale_factor', 1, default=[1.0])[0]),
                           scale_body))
    # Evaluation order: a coupler after those that set its independent coordinate.
    ordered, done = [], set()
    pending = list(found)
    dependents = {c.dependent for c in found}
    while pending:
      ready = [c for c in pending if c.independent not in dependents or c.independent in done]
      if not ready:
        raise OsimError(self.path, '<ConstraintSet>',
                        f'coordinate couplers form a cycle: {[c.name for c in pending]}')
      for c in ready:
        ordered.append(c)
        done.add(c.dependent)
        pending.remove(c)
    seen = set()
    for c in ordered:
      if c.dependent in seen:
        raise OsimError(self.path, f'<CoordinateCouplerConstraint name="{c.name}">',
                        f'coordinate {names[c.dependent]!r} is dependent in two couplers')
      seen.add(c.dependent)
    return ordered


def _is_frame_tag(tag: str) -> bool:
  return tag in ('Ground', 'Body') or (tag.endswith('Frame') and tag != 'FrameGeometry')


def _looks_like_function(tag: str) -> bool:
  return tag.endswith(('Function', 'Spline')) or tag in ('Constant', 'Sine', 'StepFunction')


def _check_unique(parser, elems, what):
  names = [e.get('name') for e in elems]
  for e, n in zip(elems, names):
    if n is None or n == '':
      raise parser.error(e, f'{what} without a name')
    if names.count(n) > 1:
      raise parser.error(e, f'duplicate {what} name {n!r}')


def _custom_motion_type(index, rotations, translations) -> str:
  """OpenSim's rule: a slope +-1 linear function of the coordinate along a rotation
  (checked first) or translation axis; anything else is coupled."""
  for motions, kind in ((rotations, 'rotational'), (translations, 'translational')):
    for m in motions:
      if m.coordinate == index and isinstance(m.function, fn.Linear) and abs(m.function.slope) == 1.0:
        return kind
  return 'coupled'
