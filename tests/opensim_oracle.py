"""Reference ("oracle") forward kinematics computed by the ``opensim`` package (4.6, PyPI).

This is what the JAX layer is checked against.  Everything here uses OpenSim's own API:

* ``opensim_fk``: set coordinates, optionally assemble (couplers), ``realizePosition``, read
  bodies, joint child frames, mass centres and markers.  Optional per-body scaling is done by
  OpenSim's ``Model.scale(state, ScaleSet, preserveMassDist=True)`` on a fresh copy of the model
  (one copy per distinct scale set).
* ``opensim_coordinate_info``: names, ranges, defaults, locked flags, motion types and which
  coordinates are coupler-dependent.
* ``opensim_fk_timing``: poses/second of the plain opensim API loop (single thread).

Behaviour of opensim 4.6 that matters here (checked with the package itself):

* ``Coordinate.setValue(state, v, False)`` on a LOCKED coordinate does nothing: opensim logs
  "[warning] Coordinate.setValue: coordinate X is locked. Unable to change its value." and the
  value stays at the locked value (the default value at ``initSystem``).  ``setValue(s, v, True)``
  is refused the same way.  ``setLocked(s, False)``, ``setValue``, ``setLocked(s, True)`` works, and
  the lock then holds the new value (also through ``assemble``).  ``opensim_fk`` uses that
  unlock-set-relock sequence, so the q given for a locked coordinate is what is used.  (Test
  data normally puts locked coordinates at their default anyway.)
* ``setValue(..., False)`` does not clamp to the coordinate range, even for clamped
  coordinates.  ``assemble`` leaves the independent coordinates at the requested values (they
  are tracking goals, the couplers can be satisfied exactly by the dependent coordinates).
* Rotations are read as ``body.getTransformInGround(s).R()`` so ``v_ground = R @ v_body + p``.
"""

from __future__ import annotations

import time
from typing import Dict, List, Sequence

import numpy as np
import opensim as osim

try:  # keep opensim quiet (locked-coordinate warnings, model loading chatter)
    osim.Logger.setLevelString("error")
    osim.Logger.removeFileSink()  # no opensim.log in the working directory
except Exception:  # pragma: no cover
    pass

_MOTION_TYPES = {}
for _name in ("Undefined", "Rotational", "Translational", "Coupled"):
    if hasattr(osim.Coordinate, _name):
        _MOTION_TYPES[int(getattr(osim.Coordinate, _name))] = _name


# ----------------------------------------------------------------------------- helpers
def _vec3(v) -> np.ndarray:
    return np.array([v.get(0), v.get(1), v.get(2)], dtype=np.float64)


def _rot(R) -> np.ndarray:
    return np.array([[R.get(i, j) for j in range(3)] for i in range(3)], dtype=np.float64)


def _load(osim_path: str) -> osim.Model:
    return osim.Model(str(osim_path))


def _set_names(s) -> List[str]:
    return [s.get(i).getName() for i in range(s.getSize())]


def _couplers(model: osim.Model, state=None) -> List[dict]:
    out = []
    cs = model.getConstraintSet()
    for i in range(cs.getSize()):
        c = cs.get(i)
        cc = osim.CoordinateCouplerConstraint.safeDownCast(c)
        if cc is None:
            continue
        names = cc.getIndependentCoordinateNames()
        enforced = bool(cc.isEnforced(state)) if state is not None else bool(cc.get_isEnforced())
        out.append({
            "name": cc.getName(),
            "dependent": cc.getDependentCoordinateName(),
            "independent": [names.get(k) for k in range(names.getSize())],
            "scale_factor": osim.PropertyHelper.getValueDouble(
                cc.getPropertyByName("scale_factor")),
            "function": cc.getFunction().getConcreteClassName(),
            "enforced": enforced,
            "_obj": cc,
        })
    return out


def _scaled_model(osim_path: str, body_names: Sequence[str], scales: np.ndarray) -> osim.Model:
    """Fresh copy of the model scaled by OpenSim's Model.scale (preserveMassDist=True)."""
    model = _load(osim_path)
    state = model.initSystem()
    ss = osim.ScaleSet()
    for name, f in zip(body_names, np.asarray(scales, dtype=np.float64)):
        sc = osim.Scale()
        sc.setSegmentName(name)
        sc.setScaleFactors(osim.Vec3(float(f[0]), float(f[1]), float(f[2])))
        sc.setApply(True)
        ss.cloneAndAppend(sc)
    ok = model.scale(state, ss, True)
    if ok is False:
        raise RuntimeError("opensim Model.scale failed for %s" % osim_path)
    return model


# ----------------------------------------------------------------------------- public API
def opensim_coordinate_info(osim_path: str) -> Dict[str, object]:
    """Coordinate metadata of a model, in CoordinateSet order.

    Returns a dict with ``names`` (list), ``range_min``/``range_max``/``defaults`` (float64
    arrays), ``locked``/``clamped``/``coupler_dependent`` (bool arrays), ``motion_types`` (list
    of 'Rotational' | 'Translational' | 'Coupled' | 'Undefined', from
    ``coord.getMotionType()``), ``joints`` (owning joint name per coordinate), ``couplers``
    (list of dicts: name, dependent, independent, scale_factor, function class, enforced) and the
    model's ``body_names``, ``joint_names``, ``marker_names`` in set order.
    """
    model = _load(osim_path)
    state = model.initSystem()
    cset = model.getCoordinateSet()
    names = _set_names(cset)
    cpl = _couplers(model, state)
    deps = {c["dependent"] for c in cpl if c["enforced"]}
    coords = [cset.get(i) for i in range(cset.getSize())]
    info = {
        "names": names,
        "range_min": np.array([c.getRangeMin() for c in coords], dtype=np.float64),
        "range_max": np.array([c.getRangeMax() for c in coords], dtype=np.float64),
        "defaults": np.array([c.getDefaultValue() for c in coords], dtype=np.float64),
        "locked": np.array([bool(c.getDefaultLocked()) for c in coords], dtype=bool),
        "clamped": np.array([bool(c.getDefaultClamped()) for c in coords], dtype=bool),
        "motion_types": [_MOTION_TYPES.get(int(c.getMotionType()), str(c.getMotionType()))
                         for c in coords],
        "coupler_dependent": np.array([n in deps for n in names], dtype=bool),
        "joints": [c.getJoint().getName() for c in coords],
        "couplers": [{k: v for k, v in c.items() if not k.startswith("_")} for c in cpl],
        "body_names": _set_names(model.getBodySet()),
        "joint_names": _set_names(model.getJointSet()),
        "marker_names": _set_names(model.getMarkerSet()),
    }
    return info


def opensim_fk(osim_path: str, q, scales=None, *, coordinate_names: Sequence[str],
               body_names: Sequence[str], joint_names: Sequence[str],
               marker_names: Sequence[str], enforce_couplers: bool = False) -> Dict[str, np.ndarray]:
    """Forward kinematics by opensim for each row of ``q``.

    Args:
      osim_path: model file.
      q: (N, C) coordinate values (rad / m) in ``coordinate_names`` order.  Every model
        coordinate not named keeps its default value.
      scales: None or (N, B, 3) per-body scale factors in ``body_names`` order.  Rows with the
        same scale set share one scaled model copy (``Model.scale(state, ScaleSet, True)``).
      coordinate_names, body_names, joint_names, marker_names: what to set / read, in order.
      enforce_couplers: if True, after setting every coordinate except the dependent
        coordinates of enforced CoordinateCouplerConstraints, call ``model.assemble(state)`` and
        return the assembled coordinates as ``q`` (N, C).

    Returns a dict of float64 arrays:
      ``body_positions`` (N, B, 3), ``body_rotations`` (N, B, 3, 3) with
      v_ground = R @ v_body, ``joint_centers`` (N, J, 3) = ground position of each joint's
      CHILD frame origin, ``centers_of_mass`` (N, B, 3), ``markers`` (N, M, 3), and ``q``
      (N, C): the coordinate values read back after setting (and assembling).
    """
    q = np.atleast_2d(np.asarray(q, dtype=np.float64))
    n, nc = q.shape
    coordinate_names = list(coordinate_names)
    body_names, joint_names, marker_names = list(body_names), list(joint_names), list(marker_names)
    if nc != len(coordinate_names):
        raise ValueError("q has %d columns, %d coordinate names" % (nc, len(coordinate_names)))
    if scales is not None:
        scales = np.asarray(scales, dtype=np.float64)
        if scales.shape != (n, len(body_names), 3):
            raise ValueError("scales must be (N, B, 3) = %s, got %s"
                             % ((n, len(body_names), 3), scales.shape))

    out = {
        "body_positions": np.zeros((n, len(body_names), 3)),
        "body_rotations": np.zeros((n, len(body_names), 3, 3)),
        "joint_centers": np.zeros((n, len(joint_names), 3)),
        "centers_of_mass": np.zeros((n, len(body_names), 3)),
        "markers": np.zeros((n, len(marker_names), 3)),
        "q": np.zeros((n, nc)),
    }

    # group rows by scale set
    if scales is None:
        groups = {None: list(range(n))}
    else:
        groups = {}
        for i in range(n):
            groups.setdefault(scales[i].tobytes(), []).append(i)

    for key, rows in groups.items():
        if key is None:
            model = _load(osim_path)
        else:
            model = _scaled_model(osim_path, body_names, scales[rows[0]])
        state = model.initSystem()
        cset = model.getCoordinateSet()
        coords = [cset.get(name) for name in coordinate_names]
        bodies = [model.getBodySet().get(name) for name in body_names]
        coms = [b.getMassCenter() for b in bodies]
        child_frames = [model.getJointSet().get(name).getChildFrame() for name in joint_names]
        markers = [model.getMarkerSet().get(name) for name in marker_names]
        locked = [bool(c.getLocked(state)) for c in coords]

        skip = set()
        couplers = []
        if enforce_couplers:
            couplers = [c for c in _couplers(model, state) if c["enforced"]]
            skip = {c["dependent"] for c in couplers}

        for i in rows:
            for k, c in enumerate(coords):
                if coordinate_names[k] in skip:
                    continue
                if locked[k]:
                    c.setLocked(state, False)
                    c.setValue(state, float(q[i, k]), False)
                    c.setLocked(state, True)
                else:
                    c.setValue(state, float(q[i, k]), False)
            if enforce_couplers and couplers:
                model.assemble(state)
            model.realizePosition(state)
            out["q"][i] = [c.getValue(state) for c in coords]
            for b, (body, com) in enumerate(zip(bodies, coms)):
                X = body.getTransformInGround(state)
                out["body_positions"][i, b] = _vec3(X.p())
                out["body_rotations"][i, b] = _rot(X.R())
                out["centers_of_mass"][i, b] = _vec3(body.findStationLocationInGround(state, com))
            for j, f in enumerate(child_frames):
                out["joint_centers"][i, j] = _vec3(f.getPositionInGround(state))
            for k, mk in enumerate(markers):
                out["markers"][i, k] = _vec3(mk.getLocationInGround(state))
    return out


def opensim_coupler_residuals(osim_path: str, q, coordinate_names: Sequence[str],
                              scales=None, body_names: Sequence[str] = ()) -> np.ndarray:
    """(N, K) residuals q_dep - scale_factor * f(q_indep) of the K enforced couplers, evaluated
    with opensim's own function objects on a (possibly scaled) model; q in coordinate_names
    order must contain every coupler coordinate."""
    q = np.atleast_2d(np.asarray(q, dtype=np.float64))
    if scales is None:
        model = _load(osim_path)
    else:
        model = _scaled_model(osim_path, body_names, np.asarray(scales, dtype=np.float64))
    state = model.initSystem()
    cpl = [c for c in _couplers(model, state) if c["enforced"]]
    idx = {n: k for k, n in enumerate(coordinate_names)}
    res = np.zeros((q.shape[0], len(cpl)))
    for i in range(q.shape[0]):
        for k, c in enumerate(cpl):
            x = osim.Vector(len(c["independent"]), 0.0)
            for a, nm in enumerate(c["independent"]):
                x.set(a, float(q[i, idx[nm]]))
            res[i, k] = q[i, idx[c["dependent"]]] - c["scale_factor"] * c["_obj"].getFunction().calcValue(x)
    return res


def opensim_fk_timing(osim_path: str, n: int = 1000, seed: int = 0) -> Dict[str, float]:
    """Poses/second of the plain opensim API loop, single thread.

    Per pose: ``setValue(state, v, False)`` for every coordinate (opensim ignores locked ones),
    ``realizePosition``, and ``getLocationInGround`` of every marker converted to floats.
    Poses are sampled uniformly inside the coordinate ranges (clipped to +-pi / +-2 m).
    """
    model = _load(osim_path)
    state = model.initSystem()
    cset = model.getCoordinateSet()
    coords = [cset.get(i) for i in range(cset.getSize())]
    markers = [model.getMarkerSet().get(i) for i in range(model.getMarkerSet().getSize())]
    lo = np.array([max(c.getRangeMin(), -np.pi) for c in coords])
    hi = np.array([min(c.getRangeMax(), np.pi) for c in coords])
    q = lo + (hi - lo) * np.random.default_rng(seed).random((n, len(coords)))
    q = q.tolist()
    sink = 0.0
    # one warm-up pose
    for c, v in zip(coords, q[0]):
        c.setValue(state, v, False)
    model.realizePosition(state)
    t0 = time.perf_counter()
    for row in q:
        for c, v in zip(coords, row):
            c.setValue(state, v, False)
        model.realizePosition(state)
        for mk in markers:
            p = mk.getLocationInGround(state)
            sink += p.get(0) + p.get(1) + p.get(2)
    dt = time.perf_counter() - t0
    return {
        "poses_per_second": n / dt,
        "seconds": dt,
        "us_per_pose": 1e6 * dt / n,
        "n": float(n),
        "num_coordinates": float(len(coords)),
        "num_markers": float(len(markers)),
        "checksum": sink,
    }
