"""Small OpenSim models, built with the opensim Python API, for checking the JAX layer.

Every model is written to an ``.osim`` file and loaded back with ``osim.Model(path)`` +
``initSystem()`` before its path is returned.  Together the models cover:

* joints: PinJoint, SliderJoint, UniversalJoint, BallJoint, GimbalJoint, FreeJoint,
  PlanarJoint, WeldJoint, CustomJoint (3 rotation + 3 translation TransformAxis with
  non-axis-aligned unit axes such as normalise((1, 2, 3)));
* TransformAxis functions on rotation AND translation axes: Constant, LinearFunction,
  SimmSpline, NaturalCubicSpline, PolynomialFunction (cubic), MultiplierFunction (wrapping a
  spline), PiecewiseLinearFunction; spline-driven translation axes whose parent body gets
  scaled; identity ``LinearFunction(1, 0)`` translation axes (which ``Model.scale`` leaves
  alone); spline knot ranges narrower than the coordinate range (so sampling exercises
  extrapolation);
* CoordinateCouplerConstraints: a rotational dependent coordinate driven by a SimmSpline with
  scale_factor 0.9, a chain (a coupler whose independent coordinate is itself the dependent
  coordinate of another coupler, with a LinearFunction and scale_factor 1.5) and a coupler with
  a translational dependent coordinate (the only kind ``Model.scale`` refuses to scale
  non-uniformly, see ``uniform_scale_bodies``);
* a locked coordinate with a non-zero default;
* markers on bodies, on ground, on PhysicalOffsetFrames, including an offset frame attached to
  another offset frame, with non-zero orientations;
* joint parent/child offset frames with non-zero translation and orientation, non-trivial mass
  centres, chains 5 deep, and BodySet / JointSet orders that are not topological.

NaturalCubicSpline: opensim 4.6 has no NaturalCubicSpline class. ``libosimCommon`` registers the
XML tag ``NaturalCubicSpline`` (and ``natCubicSpline``) as an alias of ``SimmSpline``
(``Object::renameType``): ``OpenSimObject.newInstanceOfType('NaturalCubicSpline')`` returns a
SimmSpline, and a file containing ``<NaturalCubicSpline>`` loads as a SimmSpline (and is written
back as ``<SimmSpline>``).  The builders therefore write SimmSplines and rename the tag of the
designated ones in the written XML; the loaded model evaluates them exactly as SimmSpline.

Public entry points: ``build_all(directory) -> {name: path}``, the single builders
``build_joints_model``, ``build_custom_model``, ``build_coupler_model``, and the sampling helpers
``sample_coordinates``, ``sample_scales``, ``uniform_scale_bodies``, ``model_body_names``.
"""

from __future__ import annotations

import os
import re
from typing import Dict, List, Sequence

import numpy as np
import opensim as osim

try:  # keep opensim quiet
    osim.Logger.setLevelString("error")
    osim.Logger.removeFileSink()  # no opensim.log in the working directory
except Exception:  # pragma: no cover
    pass


# Class names the models must contain (checked by tests/test_oracle_selfcheck.py).
REQUIRED_JOINTS = (
    "PinJoint", "SliderJoint", "UniversalJoint", "BallJoint", "GimbalJoint", "FreeJoint",
    "PlanarJoint", "WeldJoint", "CustomJoint",
)
REQUIRED_FUNCTIONS = (
    "Constant", "LinearFunction", "SimmSpline", "NaturalCubicSpline", "PolynomialFunction",
    "MultiplierFunction", "PiecewiseLinearFunction",
)

# Marker value in a spline's knot list that flags it for renaming to NaturalCubicSpline.
_NCS_TAG_X0 = -9.75  # short, so that it survives opensim's 6-digit spline printing


# ----------------------------------------------------------------------------- small helpers
def _v(x) -> osim.Vec3:
    return osim.Vec3(float(x[0]), float(x[1]), float(x[2]))


def _unit(x) -> np.ndarray:
    x = np.asarray(x, dtype=float)
    return x / np.linalg.norm(x)


def _body(name: str, mass: float, com, inertia=(0.1, 0.12, 0.08)) -> osim.Body:
    return osim.Body(name, float(mass), _v(com), osim.Inertia(*[float(i) for i in inertia]))


def _coord_setup(coord, rng_min, rng_max, default=0.0, locked=False, clamped=False):
    coord.setRangeMin(float(rng_min))
    coord.setRangeMax(float(rng_max))
    coord.setDefaultValue(float(default))
    coord.setDefaultLocked(bool(locked))
    coord.setDefaultClamped(bool(clamped))


def _spline(cls: str, xs: Sequence[float], ys: Sequence[float]):
    f = getattr(osim, cls)()
    for x, y in zip(xs, ys):
        f.addPoint(float(x), float(y))
    return f


def _ncs(xs: Sequence[float], ys: Sequence[float]):
    """A SimmSpline whose first knot is tagged so that it is written as NaturalCubicSpline."""
    xs = list(xs)
    assert xs[0] > _NCS_TAG_X0
    return _spline("SimmSpline", [_NCS_TAG_X0] + xs, [ys[0]] + list(ys))


def _poly(coefs_high_to_low: Sequence[float]):
    p = osim.PolynomialFunction()
    c = osim.Vector(len(coefs_high_to_low), 0.0)
    for i, a in enumerate(coefs_high_to_low):
        c.set(i, float(a))
    p.setCoefficients(c)
    return p


def _multiplier(inner, scale: float):
    m = osim.MultiplierFunction()
    inner_copy = inner.clone()
    inner_copy.thisown = False  # owned by the MultiplierFunction from here on
    m.setFunction(inner_copy)
    m.setScale(float(scale))
    return m


def _spatial_transform(axes: List[tuple]) -> osim.SpatialTransform:
    """axes: six (coordinate names list, axis 3-vector, function) tuples, rotations first."""
    st = osim.SpatialTransform()
    for i, (names, axis, fn) in enumerate(axes):
        ta = st.updTransformAxis(i)
        arr = osim.ArrayStr()
        for n in names:
            arr.append(n)
        ta.setCoordinateNames(arr)
        ta.setAxis(_v(_unit(axis)))
        ta.set_function(fn)  # copies; never use getTransformAxis(i).setFunction (segfault)
    return st


def _offset_frame(name: str, parent, translation, orientation) -> osim.PhysicalOffsetFrame:
    f = osim.PhysicalOffsetFrame()
    f.setName(name)
    f.connectSocket_parent(parent)
    f.set_translation(_v(translation))
    f.set_orientation(_v(orientation))
    return f


def _write(model: osim.Model, path: str) -> str:
    model.finalizeConnections()
    model.printToXML(path)
    _rename_tagged_splines(path)
    # Verify that it loads back and builds a system.
    m = osim.Model(path)
    m.initSystem()
    return path


def _rename_tagged_splines(path: str) -> None:
    """Turn tagged SimmSplines into <NaturalCubicSpline> (the first, tag knot is dropped)."""
    with open(path) as fh:
        text = fh.read()
    pat = re.compile(
        r"<SimmSpline(?P<attr>[^>]*)>(?P<pre>\s*)<x>\s*(?P<x>[^<]*)</x>(?P<mid>\s*)"
        r"<y>\s*(?P<y>[^<]*)</y>(?P<post>\s*)</SimmSpline>")

    def repl(m):
        xs = m.group("x").split()
        if not xs or float(xs[0]) != _NCS_TAG_X0:
            return m.group(0)
        ys = m.group("y").split()
        return ("<NaturalCubicSpline%s>%s<x>%s</x>%s<y>%s</y>%s</NaturalCubicSpline>"
                % (m.group("attr"), m.group("pre"), " ".join(xs[1:]), m.group("mid"),
                   " ".join(ys[1:]), m.group("post")))

    new = pat.sub(repl, text)
    assert not re.search(r"<x>\s*%s\s" % re.escape(repr(_NCS_TAG_X0)), new)
    with open(path, "w") as fh:
        fh.write(new)


# ----------------------------------------------------------------------------- model 1
def build_joints_model(directory: str) -> str:
    """All standard joint types, with offsets, markers on bodies/ground/(nested) offset frames.

    Tree (listed in non-topological order in BodySet and JointSet):
        ground -FreeJoint-> pelvis -BallJoint-> thigh -UniversalJoint-> shank
            -GimbalJoint-> foot -WeldJoint-> toe
        pelvis -PlanarJoint-> arm -PinJoint-> forearm -SliderJoint-> hand
    Locked coordinate: ``univ_1`` (default 0.15 rad).
    Contact: a sphere on the foot against a floor half-space, with a HuntCrossleyForce, which
    OpenSim writes as ``<HuntCrossleyForce::ContactParametersSet>`` (C++ scope in an XML name;
    the parser must read past it, as every OpenSim 4 model with contact needs).
    """
    m = osim.Model()
    m.setName("joints")
    ground = m.getGround()
    names = ["toe", "shank", "pelvis", "hand", "thigh", "foot", "forearm", "arm"]
    coms = {
        "pelvis": (0.02, 0.05, -0.01), "thigh": (0.01, -0.18, 0.02), "shank": (-0.01, -0.2, 0.0),
        "foot": (0.06, -0.02, 0.01), "toe": (0.02, 0.0, -0.01), "arm": (0.0, -0.12, 0.03),
        "forearm": (0.01, -0.1, -0.02), "hand": (0.0, -0.04, 0.01),
    }
    bodies = {}
    for n in names:  # child bodies listed before their parents
        bodies[n] = _body(n, 1.0 + len(n) * 0.3, coms[n])
        m.addBody(bodies[n])

    # (joint class, name, parent, child, loc/ori in parent, loc/ori in child)
    J = {}
    J["free"] = osim.FreeJoint("free", ground, _v((0.1, 0.9, -0.2)), _v((0.1, -0.2, 0.3)),
                               bodies["pelvis"], _v((0.01, -0.02, 0.03)), _v((-0.2, 0.1, 0.05)))
    J["ball"] = osim.BallJoint("ball", bodies["pelvis"], _v((-0.07, -0.06, 0.08)),
                               _v((0.3, 0.2, -0.1)), bodies["thigh"], _v((0.0, 0.17, 0.01)),
                               _v((-0.1, 0.25, 0.2)))
    J["univ"] = osim.UniversalJoint("univ", bodies["thigh"], _v((0.0, -0.4, 0.01)),
                                    _v((0.2, -0.3, 0.4)), bodies["shank"],
                                    _v((0.01, 0.02, -0.03)), _v((0.15, 0.0, -0.2)))
    J["gimbal"] = osim.GimbalJoint("gimbal", bodies["shank"], _v((0.0, -0.42, 0.0)),
                                   _v((-0.3, 0.5, 0.1)), bodies["foot"], _v((-0.05, 0.03, 0.0)),
                                   _v((0.2, 0.1, -0.4)))
    J["weld"] = osim.WeldJoint("weld", bodies["foot"], _v((0.15, -0.03, 0.01)),
                               _v((0.0, 0.3, 0.2)), bodies["toe"], _v((-0.02, 0.0, 0.01)),
                               _v((0.1, -0.2, 0.0)))
    J["planar"] = osim.PlanarJoint("planar", bodies["pelvis"], _v((0.0, 0.3, 0.17)),
                                   _v((0.4, -0.1, 0.2)), bodies["arm"], _v((0.01, 0.12, 0.0)),
                                   _v((-0.3, 0.2, 0.1)))
    J["pin"] = osim.PinJoint("pin", bodies["arm"], _v((0.0, -0.28, 0.01)), _v((0.5, 0.1, -0.3)),
                             bodies["forearm"], _v((0.0, 0.1, 0.0)), _v((0.2, -0.1, 0.3)))
    J["slider"] = osim.SliderJoint("slider", bodies["forearm"], _v((0.01, -0.25, 0.0)),
                                   _v((0.1, 0.7, -0.2)), bodies["hand"], _v((0.0, 0.03, 0.01)),
                                   _v((-0.3, 0.0, 0.2)))
    # joints listed before their parent joints
    for n in ["slider", "weld", "gimbal", "pin", "univ", "planar", "ball", "free"]:
        m.addJoint(J[n])

    cs = {
        "free": [(-np.pi, np.pi)] * 3 + [(-1.0, 1.0), (0.5, 1.5), (-1.0, 1.0)],
        "ball": [(-1.5, 1.5), (-1.2, 1.2), (-1.5, 1.5)],
        "univ": [(-2.0, 0.5), (-0.6, 0.6)],
        "gimbal": [(-1.0, 1.0), (-1.3, 1.3), (-0.8, 0.8)],
        "planar": [(-2.0, 2.0), (-0.2, 0.2), (-0.3, 0.3)],
        "pin": [(0.0, 2.5)],
        "slider": [(-0.1, 0.15)],
    }
    for jn, ranges in cs.items():
        j = J[jn]
        for i, (lo, hi) in enumerate(ranges):
            c = j.upd_coordinates(i)
            c.setName("%s_%d" % (jn, i))
            _coord_setup(c, lo, hi, default=0.5 * (lo + hi) if jn == "free" and i == 4 else 0.0)
    _coord_setup(J["univ"].upd_coordinates(1), -0.6, 0.6, default=0.15, locked=True)

    # Offset frames for markers: one on thigh, one nested on it; one on hand.
    off1 = _offset_frame("thigh_marker_frame", bodies["thigh"], (0.03, -0.2, 0.04),
                         (0.4, -0.3, 0.7))
    bodies["thigh"].addComponent(off1)
    off2 = _offset_frame("thigh_nested_frame", off1, (0.05, 0.01, -0.02), (-0.5, 0.2, 0.9))
    off1.addComponent(off2)
    off3 = _offset_frame("hand_marker_frame", bodies["hand"], (0.0, -0.05, 0.02),
                         (0.2, 0.2, -0.6))
    bodies["hand"].addComponent(off3)

    markers = [
        ("ground_mk", ground, (0.5, 0.01, -0.3)),
        ("pelvis_mk1", bodies["pelvis"], (0.1, 0.05, 0.12)),
        ("pelvis_mk2", bodies["pelvis"], (-0.1, 0.02, -0.11)),
        ("thigh_mk", bodies["thigh"], (0.05, -0.2, 0.03)),
        ("thigh_off_mk", off1, (0.02, 0.03, -0.01)),
        ("thigh_nested_mk", off2, (0.04, -0.01, 0.06)),
        ("shank_mk", bodies["shank"], (0.04, -0.3, -0.02)),
        ("foot_mk", bodies["foot"], (0.12, -0.03, 0.02)),
        ("toe_mk", bodies["toe"], (0.03, 0.0, 0.0)),
        ("arm_mk", bodies["arm"], (0.02, -0.1, 0.04)),
        ("forearm_mk", bodies["forearm"], (-0.02, -0.15, 0.01)),
        ("hand_mk", bodies["hand"], (0.01, -0.06, 0.0)),
        ("hand_off_mk", off3, (0.02, 0.01, 0.03)),
    ]
    for name, frame, loc in markers:
        m.addMarker(osim.Marker(name, frame, _v(loc)))

    m.addContactGeometry(osim.ContactSphere(0.03, _v((0.1, -0.05, 0.0)), bodies["foot"], "heel"))
    m.addContactGeometry(osim.ContactHalfSpace(_v((0, 0, 0)), _v((0, 0, -np.pi / 2)), ground,
                                               "floor"))
    contact = osim.HuntCrossleyForce()
    contact.setName("heel_floor")
    contact.addGeometry("heel")
    contact.addGeometry("floor")
    contact.setStiffness(1e6)
    m.addForce(contact)
    return _write(m, os.path.join(directory, "test_joints.osim"))


# ----------------------------------------------------------------------------- model 2
def build_custom_model(directory: str) -> str:
    """CustomJoints exercising every function type on rotation and translation axes.

    Tree: ground -CustomJoint root-> base -CustomJoint cj_a-> seg1 -CustomJoint cj_b-> seg2
          -PinJoint pin-> seg3 -SliderJoint slide-> seg4    (BodySet/JointSet not topological)
    cj_a: rot LinearFunction(0.8,0.1) / SimmSpline / cubic Polynomial; trans NaturalCubicSpline /
          MultiplierFunction(SimmSpline, 1.7) / PiecewiseLinearFunction  (parent base is scaled)
    cj_b: rot Constant(0.3) / MultiplierFunction(SimmSpline, -0.8) / PiecewiseLinearFunction;
          trans LinearFunction(1,0) (identity: not scaled) / LinearFunction(0.5,0.01) / Constant
    """
    m = osim.Model()
    m.setName("custom")
    ground = m.getGround()
    coms = {"base": (0.01, 0.02, -0.03), "seg1": (0.02, -0.15, 0.01), "seg2": (-0.01, -0.12, 0.02),
            "seg3": (0.0, -0.1, -0.015), "seg4": (0.01, -0.03, 0.0)}
    bodies = {}
    for n in ["seg2", "seg4", "base", "seg1", "seg3"]:
        bodies[n] = _body(n, 2.0, coms[n])
        m.addBody(bodies[n])

    L = lambda a, b: osim.LinearFunction(float(a), float(b))  # noqa: E731
    st_root = _spatial_transform([
        (["root_r1"], (1, 2, 3), L(1, 0)),
        (["root_r2"], (-2, 1, 0.5), L(1, 0)),
        (["root_r3"], (0.3, -0.4, 1), L(1, 0)),
        (["root_t1"], (1, 0.1, -0.2), L(1, 0)),
        (["root_t2"], (0.2, 1, 0.3), L(1, 0)),
        (["root_t3"], (-0.1, 0.25, 1), L(1, 0)),
    ])
    root = osim.CustomJoint("root", ground, _v((0.2, 0.8, -0.1)), _v((0.1, 0.2, -0.3)),
                            bodies["base"], _v((0.02, -0.01, 0.03)), _v((-0.2, 0.3, 0.1)), st_root)

    qa_knots = np.linspace(-1.0, 1.0, 7)  # coordinate ranges reach beyond: extrapolation
    st_a = _spatial_transform([
        (["qa"], (1, 2, 3), L(0.8, 0.1)),
        (["qa"], (0, 1, -1), _spline("SimmSpline", qa_knots, 0.6 * np.sin(1.3 * qa_knots) + 0.1)),
        (["qb"], (-1, 0.5, 2), _poly([0.3, -0.2, 0.5, 0.05])),
        (["qa"], (1, 2, 3), _ncs([-0.9, -0.5, 0.0, 0.3, 0.8, 1.0],
                                 [0.01, 0.03, 0.05, 0.04, 0.02, 0.025])),
        (["qb"], (2, -1, 0.5), _multiplier(
            _spline("SimmSpline", [-1.0, -0.4, 0.1, 0.7, 1.2], [0.0, 0.02, -0.01, 0.03, 0.01]),
            1.7)),
        (["qb"], (-0.3, 0.4, 1), _spline("PiecewiseLinearFunction", [-0.8, 0.0, 0.5, 1.0],
                                         [-0.03, 0.0, 0.04, 0.02])),
    ])
    cj_a = osim.CustomJoint("cj_a", bodies["base"], _v((0.05, -0.1, 0.08)), _v((0.4, -0.3, 0.6)),
                            bodies["seg1"], _v((-0.01, 0.12, 0.02)), _v((0.2, 0.5, -0.1)), st_a)

    st_b = _spatial_transform([
        ([], (0.2, 1, 0.1), osim.Constant(0.3)),
        (["qc"], (1, -1, 2), _multiplier(
            _spline("SimmSpline", [-1.5, -0.5, 0.0, 0.6, 1.5], [-0.9, -0.4, 0.0, 0.5, 1.1]), -0.8)),
        (["qd"], (3, 1, -1), _spline("PiecewiseLinearFunction", [-1.0, -0.2, 0.4, 1.0],
                                     [-0.5, 0.1, 0.2, 0.7])),
        (["qe"], (1, 0.2, 0.1), L(1, 0)),
        (["qd"], (0.1, 1, -0.3), L(0.5, 0.01)),
        ([], (-0.2, 0.3, 1), osim.Constant(0.02)),
    ])
    cj_b = osim.CustomJoint("cj_b", bodies["seg1"], _v((0.0, -0.3, 0.02)), _v((-0.2, 0.1, 0.5)),
                            bodies["seg2"], _v((0.01, 0.1, 0.0)), _v((0.3, -0.4, 0.2)), st_b)
    pin = osim.PinJoint("pin", bodies["seg2"], _v((0.02, -0.25, 0.01)), _v((0.6, -0.2, 0.1)),
                        bodies["seg3"], _v((0.0, 0.1, 0.02)), _v((-0.1, 0.3, 0.2)))
    slide = osim.SliderJoint("slide", bodies["seg3"], _v((0.01, -0.2, 0.0)), _v((0.2, 0.1, 0.9)),
                             bodies["seg4"], _v((0.0, 0.02, -0.01)), _v((0.1, -0.5, 0.3)))
    for j in [cj_b, slide, root, pin, cj_a]:
        m.addJoint(j)

    ranges = {
        "root_r1": (-np.pi, np.pi), "root_r2": (-1.2, 1.2), "root_r3": (-np.pi, np.pi),
        "root_t1": (-0.5, 0.5), "root_t2": (-0.5, 0.5), "root_t3": (-0.5, 0.5),
        "qa": (-1.2, 1.2), "qb": (-1.0, 1.3), "qc": (-1.8, 1.8), "qd": (-1.2, 1.2),
        "qe": (-0.05, 0.05), "pin_q": (-1.5, 1.5), "slide_q": (-0.1, 0.1),
    }
    pin.upd_coordinates(0).setName("pin_q")
    slide.upd_coordinates(0).setName("slide_q")
    for j in [root, cj_a, cj_b, pin, slide]:
        for i in range(j.numCoordinates()):
            c = j.upd_coordinates(i)
            _coord_setup(c, *ranges[c.getName()])

    off1 = _offset_frame("seg2_frame", bodies["seg2"], (0.02, -0.05, 0.03), (0.3, 0.6, -0.2))
    bodies["seg2"].addComponent(off1)
    off2 = _offset_frame("seg2_nested", off1, (-0.01, 0.04, 0.02), (-0.4, 0.1, 0.8))
    off1.addComponent(off2)
    markers = [
        ("ground_mk", ground, (-0.2, 0.05, 0.4)),
        ("base_mk", bodies["base"], (0.1, 0.02, -0.05)),
        ("seg1_mk", bodies["seg1"], (0.03, -0.2, 0.02)),
        ("seg1_mk2", bodies["seg1"], (-0.04, -0.1, -0.03)),
        ("seg2_mk", bodies["seg2"], (0.02, -0.15, 0.04)),
        ("seg2_off_mk", off1, (0.01, 0.02, 0.03)),
        ("seg2_nested_mk", off2, (0.03, -0.02, 0.01)),
        ("seg3_mk", bodies["seg3"], (0.0, -0.12, 0.02)),
        ("seg4_mk", bodies["seg4"], (0.02, -0.04, 0.0)),
    ]
    for name, frame, loc in markers:
        m.addMarker(osim.Marker(name, frame, _v(loc)))
    return _write(m, os.path.join(directory, "test_custom.osim"))


# ----------------------------------------------------------------------------- model 3
def build_coupler_model(directory: str) -> str:
    """A leg with knee-like CustomJoints and CoordinateCouplerConstraints.

    Tree (non-topological lists): ground -PlanarJoint-> pelvis -GimbalJoint-> femur
        femur -CustomJoint knee-> tibia -PinJoint ankle-> foot -PinJoint mtp-> toes
        femur -CustomJoint patellofemoral-> patella
        pelvis -SliderJoint tail_slide-> tail
    Couplers:
        knee_beta  = 0.9 * SimmSpline(knee)       (rotational dependent)
        mtp        = 1.5 * Linear(0.5, 0.1)(knee_beta)   (chain: independent is dependent)
        tail_slide = 1.0 * NaturalCubicSpline(hip_flex)  (translational dependent: Model.scale
                     refuses non-uniform factors on pelvis, the parent body of tail_slide's joint)
    Locked: ``hip_rot`` (default 0.2 rad).
    The knee has spline translations (parent frame: rotated offset on femur) so they get scaled by
    the femur's factors.  The patellofemoral joint's translations are SimmSplines of knee_beta.
    """
    m = osim.Model()
    m.setName("couplers")
    ground = m.getGround()
    coms = {"pelvis": (-0.05, 0.01, 0.0), "femur": (0.0, -0.17, 0.01), "tibia": (-0.005, -0.18, 0.0),
            "patella": (0.005, 0.0, 0.002), "foot": (0.09, 0.03, 0.0), "toes": (0.03, 0.0, -0.01),
            "tail": (0.0, -0.05, 0.0)}
    bodies = {}
    for n in ["toes", "tibia", "patella", "pelvis", "foot", "tail", "femur"]:
        bodies[n] = _body(n, 3.0, coms[n])
        m.addBody(bodies[n])

    planar = osim.PlanarJoint("ground_pelvis", ground, _v((0.0, 0.95, 0.0)), _v((0.0, 0.0, 0.0)),
                              bodies["pelvis"], _v((0.0, 0.0, 0.0)), _v((0.0, 0.0, 0.0)))
    hip = osim.GimbalJoint("hip", bodies["pelvis"], _v((-0.06, -0.07, 0.08)), _v((0.1, -0.2, 0.15)),
                           bodies["femur"], _v((0.0, 0.0, 0.0)), _v((0.0, 0.0, 0.0)))
    kx = np.linspace(0.0, 2.0, 9)
    L = lambda a, b: osim.LinearFunction(float(a), float(b))  # noqa: E731
    st_knee = _spatial_transform([
        (["knee"], (1, 2, 3), _ncs(kx, 0.05 * np.sin(2 * kx))),
        (["knee"], (0, 0, 1), L(1, 0)),
        ([], (1, -1, 0), osim.Constant(0.0)),
        (["knee"], (0.2, 1, 0.1), _spline("SimmSpline", kx, 0.01 * kx - 0.004 * kx ** 2)),
        (["knee"], (1, 0.1, -0.3), _poly([0.001, -0.004, 0.006, 0.0])),
        ([], (0, 0.2, 1), osim.Constant(0.003)),
    ])
    knee = osim.CustomJoint("knee", bodies["femur"], _v((-0.005, -0.4, -0.003)),
                            _v((-0.2, 0.4, 1.2)), bodies["tibia"], _v((-0.008, -0.003, -0.0015)),
                            _v((-0.2, 0.4, 1.2)), st_knee)
    st_pf = _spatial_transform([
        (["knee_beta"], (0, 0, 1), L(1, 0)),
        ([], (1, 0, 0), osim.Constant(0.0)),
        ([], (0, 1, 0), osim.Constant(0.0)),
        (["knee_beta"], (1, 0, 0), _spline("SimmSpline", kx, 0.05 - 0.01 * kx)),
        (["knee_beta"], (0, 1, 0), _spline("SimmSpline", kx, -0.02 - 0.02 * np.sin(kx))),
        ([], (0, 0, 1), osim.Constant(0.002)),
    ])
    pf = osim.CustomJoint("patellofemoral", bodies["femur"], _v((0.0, -0.4, 0.0)),
                          _v((0.0, 0.0, 0.3)), bodies["patella"], _v((0.0, 0.0, 0.0)),
                          _v((0.0, 0.0, 0.0)), st_pf)
    ankle = osim.PinJoint("ankle", bodies["tibia"], _v((0.0, -0.43, 0.0)), _v((0.2, -0.3, 0.1)),
                          bodies["foot"], _v((0.0, 0.0, 0.0)), _v((0.2, -0.3, 0.1)))
    mtp = osim.PinJoint("mtp", bodies["foot"], _v((0.18, -0.005, 0.001)), _v((-0.5, 0.3, 0.0)),
                        bodies["toes"], _v((0.0, 0.0, 0.0)), _v((-0.5, 0.3, 0.0)))
    tail = osim.SliderJoint("tail_slide", bodies["pelvis"], _v((-0.12, 0.0, 0.0)),
                            _v((0.3, 0.2, -1.0)), bodies["tail"], _v((0.0, 0.02, 0.0)),
                            _v((0.0, 0.0, 0.1)))
    for j in [mtp, knee, tail, ankle, planar, pf, hip]:
        m.addJoint(j)

    names = {planar: ["pelvis_tilt", "pelvis_tx", "pelvis_ty"],
             hip: ["hip_flex", "hip_add", "hip_rot"], ankle: ["ankle"], mtp: ["mtp"],
             tail: ["tail_slide"]}
    for j, ns in names.items():
        for i, n in enumerate(ns):
            j.upd_coordinates(i).setName(n)
    ranges = {
        "pelvis_tilt": (-0.8, 0.8, 0.0), "pelvis_tx": (-1.0, 1.0, 0.0),
        "pelvis_ty": (-0.2, 0.2, 0.0), "hip_flex": (-0.6, 1.6, 0.0), "hip_add": (-0.5, 0.4, 0.0),
        "hip_rot": (-0.6, 0.6, 0.2), "knee": (0.0, 2.0, 0.3), "knee_beta": (-0.5, 2.5, 0.0),
        "ankle": (-0.8, 0.6, 0.0), "mtp": (-1.0, 1.5, 0.0), "tail_slide": (-0.3, 0.3, 0.0),
    }
    for j in [planar, hip, knee, pf, ankle, mtp, tail]:
        for i in range(j.numCoordinates()):
            c = j.upd_coordinates(i)
            lo, hi, d = ranges[c.getName()]
            _coord_setup(c, lo, hi, default=d, locked=(c.getName() == "hip_rot"))

    def coupler(name, dep, indep, fn, scale_factor):
        cc = osim.CoordinateCouplerConstraint()
        cc.setName(name)
        arr = osim.ArrayStr()
        arr.append(indep)
        cc.setIndependentCoordinateNames(arr)
        cc.setDependentCoordinateName(dep)
        fn = fn.clone()
        fn.thisown = False
        cc.setFunction(fn)
        osim.PropertyHelper.setValueDouble(float(scale_factor), cc.updPropertyByName("scale_factor"))
        return cc

    # constraints listed with the chain member first
    m.addConstraint(coupler("mtp_coupler", "mtp", "knee_beta", L(0.5, 0.1), 1.5))
    m.addConstraint(coupler("patella_coupler", "knee_beta", "knee",
                            _spline("SimmSpline", kx, kx + 0.1 * np.sin(3 * kx)), 0.9))
    hx = np.linspace(-0.6, 1.6, 6)
    m.addConstraint(coupler("tail_coupler", "tail_slide", "hip_flex",
                            _ncs(hx, 0.1 * np.cos(2 * hx)), 1.0))

    off1 = _offset_frame("tibia_frame", bodies["tibia"], (0.02, -0.1, 0.01), (0.1, -0.7, 0.3))
    bodies["tibia"].addComponent(off1)
    off2 = _offset_frame("tibia_nested", off1, (0.0, -0.05, 0.02), (0.6, 0.2, -0.3))
    off1.addComponent(off2)
    markers = [
        ("ground_mk", ground, (1.0, 0.0, 0.5)),
        ("pelvis_mk", bodies["pelvis"], (0.05, 0.05, 0.1)),
        ("femur_mk", bodies["femur"], (0.03, -0.2, 0.05)),
        ("patella_mk", bodies["patella"], (0.01, 0.0, 0.0)),
        ("tibia_mk", bodies["tibia"], (0.02, -0.25, 0.03)),
        ("tibia_off_mk", off1, (0.02, 0.0, 0.01)),
        ("tibia_nested_mk", off2, (-0.01, 0.03, 0.02)),
        ("foot_mk", bodies["foot"], (0.15, 0.0, 0.03)),
        ("toes_mk", bodies["toes"], (0.04, 0.0, 0.0)),
        ("tail_mk", bodies["tail"], (0.0, -0.1, 0.0)),
    ]
    for name, frame, loc in markers:
        m.addMarker(osim.Marker(name, frame, _v(loc)))
    return _write(m, os.path.join(directory, "test_couplers.osim"))


BUILDERS = {
    "joints": build_joints_model,
    "custom": build_custom_model,
    "couplers": build_coupler_model,
}


def build_all(directory: str) -> Dict[str, str]:
    """Build every test model into ``directory``; returns {name: path}."""
    os.makedirs(directory, exist_ok=True)
    return {name: fn(str(directory)) for name, fn in BUILDERS.items()}


# ----------------------------------------------------------------------------- sampling
# Ranges wider than this are clipped before uniform sampling (Rajagopal has +-99999 ranges).
MAX_ROTATION = np.pi
MAX_TRANSLATION = 2.0


def sample_coordinates(info: dict, n: int, rng: np.random.Generator) -> np.ndarray:
    """(n, C) coordinate values, uniform inside each coordinate's range.

    ``info`` is ``opensim_oracle.opensim_coordinate_info(path)``.  Locked coordinates are set to
    their default value.  Ranges are clipped to [-MAX_ROTATION, MAX_ROTATION] (rotational and
    coupled) or [-MAX_TRANSLATION, MAX_TRANSLATION] (translational).  Coupler-dependent
    coordinates are sampled like the others (they are overwritten by assembly when couplers are
    enforced).
    """
    lo = np.array(info["range_min"], dtype=float)
    hi = np.array(info["range_max"], dtype=float)
    cap = np.array([MAX_TRANSLATION if t == "Translational" else MAX_ROTATION
                    for t in info["motion_types"]])
    lo = np.clip(lo, -cap, cap)
    hi = np.clip(hi, -cap, cap)
    q = lo + (hi - lo) * rng.random((n, len(lo)))
    locked = np.asarray(info["locked"], dtype=bool)
    q[:, locked] = np.asarray(info["defaults"], dtype=float)[locked]
    return q


def model_body_names(osim_path: str) -> List[str]:
    m = osim.Model(str(osim_path))
    bs = m.getBodySet()
    return [bs.get(i).getName() for i in range(bs.getSize())]


def uniform_scale_bodies(osim_path: str) -> List[str]:
    """Bodies that ``Model.scale`` (opensim 4.6) only accepts with x = y = z factors.

    Found empirically (see tests/test_oracle_selfcheck.py::test_nonuniform_scaling_rule):
    ``CoordinateCouplerConstraint::extendScale`` throws 'Non-uniform scaling of
    CoordinateCoupler constraints not implemented.' only when the coupler's DEPENDENT coordinate
    has motion type Translational, and then only for non-uniform factors of the base body of the
    PARENT frame of the dependent coordinate's joint.  Rotational / Coupled dependent coordinates
    (e.g. Rajagopal2016's knee_angle_*_beta, motion type Coupled) never trigger it, and neither
    does scaling the joint's child body or the bodies of the independent coordinates.  (For a
    translational dependent coordinate with uniform factor s, opensim multiplies the coupler's
    scale_factor by s.)
    """
    m = osim.Model(str(osim_path))
    m.initSystem()
    out = []
    cs = m.getConstraintSet()
    for i in range(cs.getSize()):
        cc = osim.CoordinateCouplerConstraint.safeDownCast(cs.get(i))
        if cc is None:
            continue
        dep = m.getCoordinateSet().get(cc.getDependentCoordinateName())
        if dep.getMotionType() != osim.Coordinate.Translational:
            continue
        body = dep.getJoint().getParentFrame().findBaseFrame().getName()
        if body not in out and body != m.getGround().getName():
            out.append(body)
    return out


def sample_scales(osim_path: str, n: int, rng: np.random.Generator, low: float = 0.8,
                  high: float = 1.2) -> np.ndarray:
    """(n, B, 3) per-body scale factors in the model's BodySet order (``model_body_names``).

    Uniform in [low, high], independently per axis, except for the bodies of
    ``uniform_scale_bodies`` which get one factor for x = y = z.
    """
    names = model_body_names(osim_path)
    uni = set(uniform_scale_bodies(osim_path))
    s = rng.uniform(low, high, size=(n, len(names), 3))
    for b, name in enumerate(names):
        if name in uni:
            s[:, b, 1] = s[:, b, 0]
            s[:, b, 2] = s[:, b, 0]
    return s
