"""Self-checks of the OpenSim oracle (tests/opensim_oracle.py) and the test-model builders
(tests/osim_test_models.py).

Besides checking shapes and coverage, several tests pin down opensim 4.6 behaviour the JAX
layer has to reproduce (joint conventions, SimmSpline algorithm, Model.scale rules); they are
executable documentation and fail loudly if a different opensim behaves differently.
"""

import os
import re
import sys

import numpy as np
import pytest

osim = pytest.importorskip("opensim")

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import opensim_oracle as oo  # noqa: E402
import osim_test_models as tm  # noqa: E402

_OSIM_DIRS = [os.environ.get("BANET_OSIM_DIR", ""), "/work/shared/osim",
              os.path.join(os.path.dirname(__file__), "..", "..", "shared", "osim")]


def _public_model(name):
    for d in _OSIM_DIRS:
        p = os.path.join(d, name) if d else ""
        if p and os.path.exists(p):
            return p
    pytest.skip("%s not available" % name)


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    return tm.build_all(str(tmp_path_factory.mktemp("osim_models")))


@pytest.fixture(scope="module")
def infos(models):
    return {k: oo.opensim_coordinate_info(p) for k, p in models.items()}


def _kw(info):
    return dict(coordinate_names=info["names"], body_names=info["body_names"],
                joint_names=info["joint_names"], marker_names=info["marker_names"])


# ----------------------------------------------------------------------------- helpers
def _Rx(a):
    c, s = np.cos(a), np.sin(a)
    return np.array([[1, 0, 0], [0, c, -s], [0, s, c]])


def _Ry(a):
    c, s = np.cos(a), np.sin(a)
    return np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]])


def _Rz(a):
    c, s = np.cos(a), np.sin(a)
    return np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]])


def _xyz(e):  # body-fixed X-Y-Z, as used for PhysicalOffsetFrame orientation
    return _Rx(e[0]) @ _Ry(e[1]) @ _Rz(e[2])


def _axis_angle(axis, a):
    k = np.asarray(axis, float) / np.linalg.norm(axis)
    K = np.array([[0, -k[2], k[1]], [k[2], 0, -k[0]], [-k[1], k[0], 0]])
    return np.eye(3) + np.sin(a) * K + (1 - np.cos(a)) * K @ K


def _T(R, p):
    M = np.eye(4)
    M[:3, :3] = R
    M[:3, 3] = p
    return M


def _offset(frame):
    """(base frame name, X_base_frame) for a joint frame (PhysicalOffsetFrame or body)."""
    po = osim.PhysicalOffsetFrame.safeDownCast(frame)
    if po is None:
        return frame.getName(), np.eye(4)
    return (po.getParentFrame().getName(),
            _T(_xyz(oo._vec3(po.get_orientation())), oo._vec3(po.get_translation())))


def simm_spline_reference(x, y):
    """Coefficients (b, c, d) of OpenSim's SimmSpline: the Forsythe-Malcolm-Moler cubic spline
    (end conditions: third derivative matched to the cubic through the 4 end knots; n = 2 is a
    line, n = 3 a parabola).  Value on [x_i, x_{i+1}]: y_i + t (b_i + t (c_i + t d_i)), t = u - x_i;
    below x_0: y_0 + b_0 (u - x_0); above x_{n-1}: y_{n-1} + b_{n-1} (u - x_{n-1})."""
    x = np.asarray(x, float)
    y = np.asarray(y, float)
    n = len(x)
    nm1 = n - 1
    b, c, d = np.zeros(n), np.zeros(n), np.zeros(n)
    if n < 3:
        b[:] = (y[1] - y[0]) / (x[1] - x[0])
        return b, c, d
    d[0] = x[1] - x[0]
    c[1] = (y[1] - y[0]) / d[0]
    for i in range(1, nm1):
        d[i] = x[i + 1] - x[i]
        b[i] = 2 * (d[i - 1] + d[i])
        c[i + 1] = (y[i + 1] - y[i]) / d[i]
        c[i] = c[i + 1] - c[i]
    b[0], b[nm1], c[0], c[nm1] = -d[0], -d[n - 2], 0.0, 0.0
    if n > 3:
        c[0] = c[2] / (x[3] - x[1]) - c[1] / (x[2] - x[0])
        c[nm1] = c[n - 2] / (x[nm1] - x[n - 3]) - c[n - 3] / (x[n - 2] - x[n - 4])
        c[0] = c[0] * d[0] * d[0] / (x[3] - x[0])
        c[nm1] = -c[nm1] * d[n - 2] * d[n - 2] / (x[nm1] - x[n - 4])
    for i in range(1, n):
        t = d[i - 1] / b[i - 1]
        b[i] -= t * d[i - 1]
        c[i] -= t * c[i - 1]
    c[nm1] /= b[nm1]
    for i in range(n - 2, -1, -1):
        c[i] = (c[i] - d[i] * c[i + 1]) / b[i]
    b[nm1] = (y[nm1] - y[n - 2]) / d[n - 2] + d[n - 2] * (c[n - 2] + 2 * c[nm1])
    for i in range(nm1):
        b[i] = (y[i + 1] - y[i]) / d[i] - d[i] * (c[i + 1] + 2 * c[i])
        d[i] = (c[i + 1] - c[i]) / d[i]
        c[i] = 3 * c[i]
    c[nm1] = 3 * c[nm1]
    d[nm1] = d[n - 2]
    return b, c, d


def simm_spline_eval(x, y, coefs, u):
    b, c, d = coefs
    x, y = np.asarray(x, float), np.asarray(y, float)
    if u < x[0]:
        return y[0] + b[0] * (u - x[0])
    if u > x[-1]:
        return y[-1] + b[-1] * (u - x[-1])
    i = min(int(np.searchsorted(x, u, side="right")) - 1, len(x) - 2)
    t = u - x[i]
    return y[i] + t * (b[i] + t * (c[i] + t * d[i]))


def _calc(f, u):
    return f.calcValue(osim.Vector(1, float(u)))


# ----------------------------------------------------------------------------- coverage
def test_models_load_and_cover_all_types(models):
    xml = ""
    for path in models.values():
        m = osim.Model(path)
        m.initSystem()
        with open(path) as fh:
            xml += fh.read()
    for cls in tm.REQUIRED_JOINTS + tm.REQUIRED_FUNCTIONS + (
            "CoordinateCouplerConstraint", "PhysicalOffsetFrame", "Marker"):
        assert re.search(r"<%s[ >]" % cls, xml), cls
    assert "<locked>true</locked>" in xml
    assert len(re.findall(r"<PolynomialFunction[^>]*>\s*(<!--.*?-->)?\s*<coefficients>\s*\S+\s+\S+"
                          r"\s+\S+\s+\S+\s*</coefficients>", xml, re.S)) >= 2  # cubics


def _structure(path):
    m = osim.Model(path)
    s = m.initSystem()
    bodies = oo._set_names(m.getBodySet())
    joints = [m.getJointSet().get(i) for i in range(m.getJointSet().getSize())]
    parent_of = {}
    joint_of = {}
    for k, j in enumerate(joints):
        child = j.getChildFrame().findBaseFrame().getName()
        parent_of[child] = j.getParentFrame().findBaseFrame().getName()
        joint_of[child] = k
    return m, s, bodies, joints, parent_of, joint_of


def test_models_structure(models):
    found = dict(child_before_parent=False, joint_before_parent=False, depth4=False,
                 offsets=False, spline_translation_scaled=False, oblique_axes=False,
                 ground_marker=False, offset_marker=False, nested_offset_marker=False,
                 rot_and_trans={f: [False, False] for f in tm.REQUIRED_FUNCTIONS},
                 coupler_chain=False, rotational_dep=False, scale_factor_ne1=False)
    for name, path in models.items():
        m, s, bodies, joints, parent_of, joint_of = _structure(path)
        for b, p in parent_of.items():
            if p in bodies and bodies.index(b) < bodies.index(p):
                found["child_before_parent"] = True
            if p in joint_of and joint_of[b] < joint_of[p]:
                found["joint_before_parent"] = True
            depth, cur = 0, b
            while cur in parent_of:
                depth, cur = depth + 1, parent_of[cur]
            found["depth4"] |= depth >= 4
        for j in joints:
            po = osim.PhysicalOffsetFrame.safeDownCast(j.getParentFrame())
            co = osim.PhysicalOffsetFrame.safeDownCast(j.getChildFrame())
            if po is not None and co is not None:
                found["offsets"] |= bool(all(np.abs(oo._vec3(f.get_translation())).max() > 0 and
                                        np.abs(oo._vec3(f.get_orientation())).max() > 0
                                        for f in (po, co)))
            cj = osim.CustomJoint.safeDownCast(j)
            if cj is None:
                continue
            st = cj.getSpatialTransform()
            for a in range(6):
                ta = st.getTransformAxis(a)
                ax = oo._vec3(ta.getAxis())
                found["oblique_axes"] |= int(np.sum(np.abs(ax) > 1e-9)) == 3
                fn = ta.get_function().getConcreteClassName()
                if fn in found["rot_and_trans"]:
                    found["rot_and_trans"][fn][a // 3] = True
                if fn == "MultiplierFunction":
                    inner = osim.MultiplierFunction.safeDownCast(ta.get_function()).getFunction()
                    assert inner.getConcreteClassName() == "SimmSpline"
                if (a >= 3 and fn in ("SimmSpline", "MultiplierFunction")
                        and j.getParentFrame().findBaseFrame().getName() != "ground"):
                    found["spline_translation_scaled"] = True
        for i in range(m.getMarkerSet().getSize()):
            pf = m.getMarkerSet().get(i).getParentFrame()
            found["ground_marker"] |= pf.getName() == "ground"
            po = osim.PhysicalOffsetFrame.safeDownCast(pf)
            if po is not None:
                found["offset_marker"] = True
                if osim.PhysicalOffsetFrame.safeDownCast(po.getParentFrame()) is not None:
                    found["nested_offset_marker"] |= bool(np.abs(
                        oo._vec3(po.get_orientation())).max() > 0)
        cpl = oo._couplers(m, s)
        deps = {c["dependent"] for c in cpl}
        for c in cpl:
            found["coupler_chain"] |= any(n in deps for n in c["independent"])
            mt = m.getCoordinateSet().get(c["dependent"]).getMotionType()
            found["rotational_dep"] |= mt == osim.Coordinate.Rotational
            found["scale_factor_ne1"] |= c["scale_factor"] != 1.0
    # NaturalCubicSpline is an XML alias of SimmSpline in opensim 4.6 (see osim_test_models)
    found["rot_and_trans"]["NaturalCubicSpline"] = [True, True]
    xml = "".join(open(p).read() for p in models.values())
    assert re.search(r"<TransformAxis name=\"rotation\d\">(?:(?!</TransformAxis>).)*"
                     r"<NaturalCubicSpline", xml, re.S)
    assert re.search(r"<TransformAxis name=\"translation\d\">(?:(?!</TransformAxis>).)*"
                     r"<NaturalCubicSpline", xml, re.S)
    missing = {k: v for k, v in found.items() if v is not True and k != "rot_and_trans"}
    missing.update({f: v for f, v in found["rot_and_trans"].items() if v != [True, True]})
    assert not missing, missing


# ----------------------------------------------------------------------------- oracle FK
def _check_fk(res, n, info):
    B, J, M, C = (len(info["body_names"]), len(info["joint_names"]), len(info["marker_names"]),
                  len(info["names"]))
    assert res["body_positions"].shape == (n, B, 3)
    assert res["body_rotations"].shape == (n, B, 3, 3)
    assert res["joint_centers"].shape == (n, J, 3)
    assert res["centers_of_mass"].shape == (n, B, 3)
    assert res["markers"].shape == (n, M, 3)
    assert res["q"].shape == (n, C)
    for v in res.values():
        assert v.dtype == np.float64 and np.all(np.isfinite(v))
    R = res["body_rotations"]
    np.testing.assert_allclose(R @ np.swapaxes(R, -1, -2), np.broadcast_to(np.eye(3), R.shape),
                               atol=1e-10)
    np.testing.assert_allclose(np.linalg.det(R), 1.0, atol=1e-10)


@pytest.mark.parametrize("name", ["joints", "custom", "couplers", "Rajagopal2016"])
def test_oracle_fk(name, models, infos):
    if name == "Rajagopal2016":
        path = _public_model("Rajagopal2016.osim")
        info = oo.opensim_coordinate_info(path)
    else:
        path, info = models[name], infos[name]
    rng = np.random.default_rng(0)
    n = 4
    q = tm.sample_coordinates(info, n, rng)
    res = oo.opensim_fk(path, q, **_kw(info))
    _check_fk(res, n, info)
    np.testing.assert_array_equal(res["q"], q)  # setValue(.., False) keeps every value
    # ground-fixed markers do not move
    for k, mn in enumerate(info["marker_names"]):
        if mn.startswith("ground"):
            assert np.ptp(res["markers"][:, k], axis=0).max() == 0.0

    # mass centres / bodies consistent: com = p + R @ com_local (from unscaled model)
    m = osim.Model(path)
    m.initSystem()
    com = np.array([oo._vec3(m.getBodySet().get(b).getMassCenter()) for b in info["body_names"]])
    np.testing.assert_allclose(
        res["centers_of_mass"],
        res["body_positions"] + np.einsum("nbij,bj->nbi", res["body_rotations"], com), atol=1e-12)

    # scaled: distinct scale sets per row, and a shared one
    s = tm.sample_scales(path, n, rng)
    s[1] = s[0]
    res_s = oo.opensim_fk(path, q, s, **_kw(info), enforce_couplers=True)
    _check_fk(res_s, n, info)
    assert np.abs(res_s["markers"] - res["markers"]).max() > 1e-3
    # all-ones scale factors reproduce the unscaled model, unless the model has CustomJoint
    # translation axes that are not axis-aligned under a scaled parent body: opensim multiplies
    # those by |axis| . (1, 1, 1) = ||axis||_1 > 1 (see test_unit_scale_changes_oblique_axes)
    res_1 = oo.opensim_fk(path, q[:2], np.ones((2, len(info["body_names"]), 3)), **_kw(info))
    if name in ("joints", "Rajagopal2016"):
        for k in ("body_positions", "body_rotations", "joint_centers", "centers_of_mass",
                  "markers"):
            np.testing.assert_allclose(res_1[k], res[k][:2], atol=1e-12, err_msg=k)
    else:
        assert np.abs(res_1["markers"] - res["markers"][:2]).max() > 1e-4


def test_oracle_row_grouping_matches_single_rows(models, infos):
    path, info = models["custom"], infos["custom"]
    rng = np.random.default_rng(3)
    q = tm.sample_coordinates(info, 3, rng)
    s = tm.sample_scales(path, 3, rng)
    s[2] = s[0]
    both = oo.opensim_fk(path, q, s, **_kw(info))
    for i in range(3):
        one = oo.opensim_fk(path, q[i:i + 1], s[i:i + 1], **_kw(info))
        np.testing.assert_allclose(one["markers"][0], both["markers"][i], atol=1e-14)


def test_locked_coordinate_is_set(models, infos):
    path, info = models["joints"], infos["joints"]
    k = info["names"].index("univ_1")
    assert info["locked"][k] and info["defaults"][k] == 0.15
    q = np.zeros((2, len(info["names"])))
    q[:, info["names"].index("free_4")] = 1.0
    q[0, k], q[1, k] = 0.15, -0.4
    res = oo.opensim_fk(path, q, **_kw(info))
    np.testing.assert_array_equal(res["q"][:, k], [0.15, -0.4])
    b = info["body_names"].index("shank")
    assert np.abs(res["body_rotations"][0, b] - res["body_rotations"][1, b]).max() > 0.1


@pytest.mark.parametrize("name", ["couplers", "Rajagopal2016"])
def test_enforce_couplers(name, models, infos):
    if name == "Rajagopal2016":
        path = _public_model("Rajagopal2016.osim")
        info = oo.opensim_coordinate_info(path)
    else:
        path, info = models[name], infos[name]
    dep = info["coupler_dependent"]
    assert dep.any()
    rng = np.random.default_rng(1)
    q = tm.sample_coordinates(info, 5, rng)
    for scales in (None, tm.sample_scales(path, 1, rng).repeat(5, axis=0)):
        res = oo.opensim_fk(path, q, scales, **_kw(info), enforce_couplers=True)
        qa = res["q"]
        # independent coordinates are (almost) untouched by assembly
        np.testing.assert_allclose(qa[:, ~dep], q[:, ~dep], atol=1e-6)
        assert np.abs(qa[:, dep] - q[:, dep]).max() > 1e-3
        r = oo.opensim_coupler_residuals(path, qa, info["names"], scales=None if scales is None
                                         else scales[0], body_names=info["body_names"])
        assert np.abs(r).max() < 1e-8
        # plain FK at the assembled q gives the same pose
        plain = oo.opensim_fk(path, qa, scales, **_kw(info))
        np.testing.assert_allclose(plain["markers"], res["markers"], atol=1e-12)
    if name == "couplers":  # chain: mtp = 1.5 * (0.5 * knee_beta + 0.1), knee_beta = 0.9 * spline(knee)
        i = {n: k for k, n in enumerate(info["names"])}
        np.testing.assert_allclose(qa[:, i["mtp"]], 1.5 * (0.5 * qa[:, i["knee_beta"]] + 0.1),
                                   atol=1e-9)


def test_coordinate_info(models, infos):
    info = infos["couplers"]
    assert info["coupler_dependent"].sum() == 3
    assert {c["dependent"] for c in info["couplers"]} == {"mtp", "knee_beta", "tail_slide"}
    mt = dict(zip(info["names"], info["motion_types"]))
    assert mt["tail_slide"] == "Translational" and mt["knee_beta"] == "Rotational"
    assert mt["pelvis_tx"] == "Translational" and mt["hip_flex"] == "Rotational"
    assert dict(zip(infos["custom"]["names"], infos["custom"]["motion_types"]))["qa"] == "Coupled"
    assert infos["joints"]["locked"].sum() == 1


def test_timing_runs(models):
    t = oo.opensim_fk_timing(models["joints"], 50)
    assert t["poses_per_second"] > 0 and t["num_markers"] == 13


# ----------------------------------------------------------------------------- opensim facts
def test_joint_conventions(models, infos):
    """X_G_child = X_G_parentBody X_PF(parent offset) X_FM(q) X_BM(child offset)^-1 with
    Pin: Rz(q0); Slider: x-translation q0; Universal: Rx(q0) Ry(q1); Ball/Gimbal: Rx Ry Rz
    (body-fixed X-Y-Z); Free: Rx Ry Rz then translation (q3, q4, q5) expressed in F;
    Planar: Rz(q0) and translation (q1, q2, 0) in F; offset orientations body-fixed X-Y-Z."""
    path, info = models["joints"], infos["joints"]
    m = osim.Model(path)
    m.initSystem()
    joints = {}
    for i in range(m.getJointSet().getSize()):
        j = m.getJointSet().get(i)
        pb, Xpf = _offset(j.getParentFrame())
        cb, Xbm = _offset(j.getChildFrame())
        joints[cb] = (j.getConcreteClassName(), pb, Xpf, Xbm,
                      [j.get_coordinates(k).getName() for k in range(j.numCoordinates())])
    z = np.zeros(3)
    mob = {
        "PinJoint": lambda q: _T(_Rz(q[0]), z),
        "SliderJoint": lambda q: _T(np.eye(3), [q[0], 0, 0]),
        "UniversalJoint": lambda q: _T(_Rx(q[0]) @ _Ry(q[1]), z),
        "BallJoint": lambda q: _T(_xyz(q), z),
        "GimbalJoint": lambda q: _T(_xyz(q), z),
        "FreeJoint": lambda q: _T(_xyz(q[:3]), q[3:]),
        "PlanarJoint": lambda q: _T(_Rz(q[0]), [q[1], q[2], 0]),
        "WeldJoint": lambda q: np.eye(4),
    }
    q = tm.sample_coordinates(info, 4, np.random.default_rng(7))
    q[:, info["names"].index("univ_1")] = 0.4  # locked, but set by the oracle
    res = oo.opensim_fk(path, q, **_kw(info))
    for n in range(len(q)):
        qd = dict(zip(info["names"], q[n]))
        cache = {"ground": np.eye(4)}

        def X(b):
            if b not in cache:
                kind, pb, Xpf, Xbm, cn = joints[b]
                cache[b] = X(pb) @ Xpf @ mob[kind]([qd[c] for c in cn]) @ np.linalg.inv(Xbm)
            return cache[b]

        for bi, b in enumerate(info["body_names"]):
            np.testing.assert_allclose(X(b)[:3, 3], res["body_positions"][n, bi], atol=1e-13)
            np.testing.assert_allclose(X(b)[:3, :3], res["body_rotations"][n, bi], atol=1e-13)


@pytest.mark.parametrize("name", ["custom", "couplers"])
def test_custom_joint_convention(name, models, infos):
    """CustomJoint: R_FM = R(a1, f1) R(a2, f2) R(a3, f3) (successive body-fixed rotations about
    the unit axes a_i as given in F), p_FM = sum_i f_{3+i} a_{3+i} (in F, not rotated)."""
    path, info = models[name], infos[name]
    m = osim.Model(path)
    s = m.initSystem()
    cset = m.getCoordinateSet()
    q = tm.sample_coordinates(info, 3, np.random.default_rng(11))
    for n in range(len(q)):
        for k, nm in enumerate(info["names"]):
            c = cset.get(nm)
            if not c.getLocked(s):
                c.setValue(s, float(q[n, k]), False)
        m.realizePosition(s)
        for i in range(m.getJointSet().getSize()):
            j = m.getJointSet().get(i)
            cj = osim.CustomJoint.safeDownCast(j)
            if cj is None:
                continue
            Xp = j.getParentFrame().getTransformInGround(s)
            Xc = j.getChildFrame().getTransformInGround(s)
            Rp = oo._rot(Xp.R())
            R_FM = Rp.T @ oo._rot(Xc.R())
            p_FM = Rp.T @ (oo._vec3(Xc.p()) - oo._vec3(Xp.p()))
            st = cj.getSpatialTransform()
            vals, axes = [], []
            for a in range(6):
                ta = st.getTransformAxis(a)
                names = ta.getCoordinateNamesInArray()
                x = osim.Vector(names.getSize(), 0.0)
                for b in range(names.getSize()):
                    x.set(b, cset.get(names.get(b)).getValue(s))
                vals.append(ta.get_function().calcValue(x))
                axes.append(oo._vec3(ta.getAxis()))
            R = (_axis_angle(axes[0], vals[0]) @ _axis_angle(axes[1], vals[1])
                 @ _axis_angle(axes[2], vals[2]))
            np.testing.assert_allclose(R, R_FM, atol=1e-13)
            np.testing.assert_allclose(sum(vals[3 + a] * axes[3 + a] for a in range(3)), p_FM,
                                       atol=1e-13)


def test_function_semantics():
    rng = np.random.default_rng(0)
    for n in (2, 3, 4, 5, 13):
        x = np.sort(rng.uniform(-1, 2, n))
        y = rng.normal(size=n)
        f = osim.SimmSpline()
        p = osim.PiecewiseLinearFunction()
        for a, b in zip(x, y):
            f.addPoint(float(a), float(b))
            p.addPoint(float(a), float(b))
        co = simm_spline_reference(x, y)
        for u in np.linspace(x[0] - 1.0, x[-1] + 1.0, 41):
            assert abs(simm_spline_eval(x, y, co, u) - _calc(f, u)) < 1e-12
            # PiecewiseLinear: interpolation, linear extrapolation of the end segments
            if u < x[0]:
                ref = y[0] + (y[1] - y[0]) / (x[1] - x[0]) * (u - x[0])
            elif u > x[-1]:
                ref = y[-1] + (y[-1] - y[-2]) / (x[-1] - x[-2]) * (u - x[-1])
            else:
                ref = np.interp(u, x, y)
            assert abs(ref - _calc(p, u)) < 1e-12
    # NaturalCubicSpline is an alias of SimmSpline
    o = osim.OpenSimObject.newInstanceOfType("NaturalCubicSpline")
    assert o.getConcreteClassName() == "SimmSpline"
    # PolynomialFunction: coefficients from highest to lowest order
    pf = osim.PolynomialFunction()
    c = osim.Vector(4, 0.0)
    for i, v in enumerate((1.0, 2.0, 3.0, 4.0)):
        c.set(i, v)
    pf.setCoefficients(c)
    assert _calc(pf, 2.0) == 1 * 8 + 2 * 4 + 3 * 2 + 4
    # LinearFunction(slope, intercept)
    assert _calc(osim.LinearFunction(2.0, 0.5), 3.0) == 6.5


def test_scaling_semantics(models, infos):
    """Model.scale in opensim 4.6: offsets, markers and mass centres scale element-wise by the
    factors of their BASE body (whatever the frame orientation); CustomJoint translation axes
    are wrapped in MultiplierFunction(f, |axis| . s_parentBody) (an existing MultiplierFunction
    gets its scale multiplied), except LinearFunction(1, 0) which is left alone; rotations and
    orientations are untouched."""
    path = models["custom"]
    names = ["base", "seg1", "seg2", "seg3", "seg4"]
    sf = np.array([[1.3, 0.7, 1.1], [0.8, 1.25, 0.9], [1.1, 1.2, 0.75], [0.9, 1.05, 1.2],
                   [1.15, 0.85, 1.0]])
    fac = dict(zip(names, sf))
    m1 = oo._scaled_model(path, names, sf)
    m1.initSystem()
    m0 = osim.Model(path)
    m0.initSystem()
    for jn in ("root", "cj_a", "cj_b"):
        j0 = osim.CustomJoint.safeDownCast(m0.getJointSet().get(jn))
        j1 = osim.CustomJoint.safeDownCast(m1.getJointSet().get(jn))
        parent = j0.getParentFrame().findBaseFrame().getName()
        for a in range(3, 6):
            f0 = j0.getSpatialTransform().getTransformAxis(a).get_function()
            ta = j1.getSpatialTransform().getTransformAxis(a)
            f1 = ta.get_function()
            lf = osim.LinearFunction.safeDownCast(f0)
            if parent == "ground" or (lf is not None and lf.getSlope() == 1.0
                                      and lf.getIntercept() == 0.0):
                assert f1.getConcreteClassName() == f0.getConcreteClassName()
                continue
            expect = np.abs(oo._vec3(ta.getAxis())) @ fac[parent]
            mf0 = osim.MultiplierFunction.safeDownCast(f0)
            if mf0 is not None:
                expect *= mf0.getScale()
            mf1 = osim.MultiplierFunction.safeDownCast(f1)
            assert mf1 is not None
            assert abs(mf1.getScale() - expect) < 1e-12, (jn, a)
    for comp0 in m0.getComponentsList():
        po0 = osim.PhysicalOffsetFrame.safeDownCast(comp0)
        if po0 is None:
            continue
        po1 = osim.PhysicalOffsetFrame.safeDownCast(
            m1.getComponent(po0.getAbsolutePathString()))
        s = fac.get(po0.findBaseFrame().getName(), np.ones(3))
        np.testing.assert_allclose(oo._vec3(po1.get_translation()),
                                   oo._vec3(po0.get_translation()) * s, rtol=1e-14)
        np.testing.assert_array_equal(oo._vec3(po1.get_orientation()),
                                      oo._vec3(po0.get_orientation()))
    for i in range(m0.getMarkerSet().getSize()):
        k0, k1 = m0.getMarkerSet().get(i), m1.getMarkerSet().get(i)
        s = fac.get(k0.getParentFrame().findBaseFrame().getName(), np.ones(3))
        np.testing.assert_allclose(oo._vec3(k1.get_location()), oo._vec3(k0.get_location()) * s,
                                   rtol=1e-14)
    for n in names:
        b0, b1 = m0.getBodySet().get(n), m1.getBodySet().get(n)
        np.testing.assert_allclose(oo._vec3(b1.getMassCenter()),
                                   oo._vec3(b0.getMassCenter()) * fac[n], rtol=1e-14)
        assert b1.getMass() == b0.getMass()


def test_unit_scale_changes_oblique_axes(models):
    """Quirk of opensim 4.6: Model.scale with factors (1, 1, 1) still wraps every scalable
    CustomJoint translation function in MultiplierFunction(f, sum_i |a_i|), which is != 1 for
    an axis that is not axis-aligned (e.g. 1.6036 for normalise((1, 2, 3)))."""
    path = models["custom"]
    names = tm.model_body_names(path)
    m = oo._scaled_model(path, names, np.ones((len(names), 3)))
    m.initSystem()
    ta = osim.CustomJoint.safeDownCast(m.getJointSet().get("cj_a")).getSpatialTransform() \
        .getTransformAxis(3)
    axis = oo._vec3(ta.getAxis())
    np.testing.assert_allclose(axis, np.array([1, 2, 3]) / np.sqrt(14), rtol=1e-15)
    mf = osim.MultiplierFunction.safeDownCast(ta.get_function())
    assert abs(mf.getScale() - 6 / np.sqrt(14)) < 1e-12


def test_nonuniform_scaling_rule(models):
    path = models["couplers"]
    assert tm.uniform_scale_bodies(path) == ["pelvis"]
    for body in tm.model_body_names(path):
        f = np.array([[1.1, 0.9, 1.05]])
        if body == "pelvis":
            with pytest.raises(RuntimeError, match="Non-uniform scaling of CoordinateCoupler"):
                oo._scaled_model(path, [body], f)
        else:
            oo._scaled_model(path, [body], f)
    # uniform factor s on the parent body multiplies a translational coupler's scale_factor
    m = oo._scaled_model(path, ["pelvis"], np.array([[1.2, 1.2, 1.2]]))
    s = m.initSystem()
    sfs = {c["dependent"]: c["scale_factor"] for c in oo._couplers(m, s)}
    assert sfs == pytest.approx({"tail_slide": 1.2, "knee_beta": 0.9, "mtp": 1.5})


def test_rajagopal_scaling_rule():
    path = _public_model("Rajagopal2016.osim")
    # knee_angle_*_beta have motion type Coupled: no body is restricted to uniform scaling
    assert tm.uniform_scale_bodies(path) == []


def test_rajagopal_knee_translation_scaling():
    """The knee's parent frame is a rotated PhysicalOffsetFrame on femur_r; opensim scales the
    spline translations by |axis| . s_femur with the axis as written in the OFFSET frame (no
    rotation into the femur frame), so the knee translation (in F) scales per F-axis exactly."""
    path = _public_model("Rajagopal2016.osim")
    sf = np.array([1.3, 0.7, 1.1])
    out = []
    for model in (osim.Model(path), oo._scaled_model(path, ["femur_r"], sf[None])):
        s = model.initSystem()
        j = model.getJointSet().get("walker_knee_r")
        model.getCoordinateSet().get("knee_angle_r").setValue(s, 1.0, False)
        model.realizePosition(s)
        Xp = j.getParentFrame().getTransformInGround(s)
        Xc = j.getChildFrame().getTransformInGround(s)
        out.append(oo._rot(Xp.R()).T @ (oo._vec3(Xc.p()) - oo._vec3(Xp.p())))
    # translation axes of walker_knee_r: (0,1,0) spline, (0,0,1) spline, (1,0,0) Constant(0)
    np.testing.assert_allclose(out[1], out[0] * np.array([1.0, 0.7, 1.1]), atol=1e-15)
    assert np.abs(out[0][1:]).min() > 1e-3
