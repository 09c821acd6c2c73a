"""Data table of the project's full-body OpenSim model (`banet_fullbody.osim`).

Everything the generator (`build_fullbody.py`) writes into the model comes from
this module: segment dimensions, joint centres and axes, the knee splines, the
coordinate ranges, the mass properties and the marker set. The module is plain
Python (no `opensim` import) so that it can be read, reviewed and imported
anywhere.

Conventions
-----------
* Units: metres, kilograms, radians (ranges are *written* in degrees below and
  converted once).
* Every body frame is parallel to the ground frame when all coordinates are zero:
  x anterior, y superior, z to the subject's right (the OpenSim / Rajagopal
  convention). Zero pose = anatomical standing posture: upright trunk, legs
  straight, feet flat and pointing forward, arms hanging at the sides with the
  palms facing forward.
* Geometry is written for the RIGHT side. The left side is its mirror image in
  the sagittal plane: points (vectors) get z -> -z, and rotation axes
  (pseudo-vectors) get (x, y, z) -> (-x, -y, z), so that a coordinate has the
  same anatomical meaning on both sides (positive hip_adduction_l adducts the
  left leg, exactly as in Rajagopal et al. 2016).
* Landmark positions are bony landmarks on the skin surface (no marker-radius
  offset).
* The topology, the joint, body and coordinate names, the coordinate order and
  the sign conventions are those of the Rajagopal et al. (2016) full-body model
  family, so that .mot files written for one drive the other. The numbers
  (dimensions, axes, masses, limits, markers) are this project's, derived below
  from the cited literature; where no published figure exists the value is
  marked "project estimate" with the reasoning.

Main sources
------------
[deLeva96]  P. de Leva, Adjustments to Zatsiorsky-Seluyanov's segment inertia
            parameters, J Biomech 29(9):1223-1230, 1996 (Table 4, males:
            reference stature 1741 mm, mass 73.0 kg).
[Winter09]  D.A. Winter, Biomechanics and Motor Control of Human Movement, 4th
            ed., 2009, Fig. 4.1 (segment lengths as fractions of stature H,
            after Drillis & Contini 1966).
[Bell90]    A.L. Bell, D.R. Pedersen, R.A. Brand, A comparison of the accuracy
            of several hip center location prediction methods, J Biomech
            23(6):617-621, 1990 (HJC = -19 % / -30 % / +36 % of the inter-ASIS
            distance, posterior / inferior / lateral of the ASIS midpoint).
[Inman76]   V.T. Inman, The Joints of the Ankle, Williams & Wilkins, 1976
            (talocrural axis ~82 deg to the tibial axis in the frontal plane;
            subtalar axis 42 deg above the horizontal and 23 deg medial to the
            long axis of the foot).
[Isman69]   R.E. Isman, V.T. Inman, Anthropometric studies of the human foot
            and ankle, Bull Prosthet Res 10-11:97-129, 1969 (oblique
            metatarsal-break axis, 50-70 deg to the long axis of the foot).
[Walker88]  P.S. Walker, J.S. Rovick, D.D. Robertson, The effects of knee brace
            hinge design and placement on joint mechanics, J Biomech
            21(11):965-974, 1988 -- tibiofemoral kinematics as a function of
            flexion; with the patellar kinematics of Yamaguchi & Zajac (1989,
            J Biomech 22:1-10) as used by Delp et al. (1990, IEEE TBME
            37:757-767) and Rajagopal et al. (2016, IEEE TBME 63:2068-2079).
            Knot values: see KNEE_SPLINES.
[AAOS65]    American Academy of Orthopaedic Surgeons, Joint Motion: Method of
            Measuring and Recording, 1965; same average values in Greene &
            Heckman (eds.), The Clinical Measurement of Joint Motion, AAOS 1994.
[Wu05]      G. Wu et al., ISB recommendation on definitions of joint coordinate
            systems ... Part II: shoulder, elbow, wrist and hand, J Biomech
            38:981-992, 2005 (EJC = midpoint of the epicondyles, WJC = midpoint
            of the styloids).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional

# =============================================================================
# 0. Subject and numeric conventions
# =============================================================================

STATURE = 1.75      # m, target adult male (project specification)
BODY_MASS = 75.0    # kg, target adult male (project specification)
GRAVITY = (0.0, -9.80665, 0.0)  # m/s^2, standard gravity (ISO 80000-3)

# Every number written to the model is rounded to these steps, so that the
# .osim file is byte-identical on every platform (1 um, 1 urad, 1 ug ...).
ROUND_LENGTH = 6      # decimals for metres
ROUND_ANGLE = 9       # decimals for radians (frame orientations, knots)
ROUND_MASS = 6        # decimals for kg and kg m^2


def _r(value: float, digits: int = ROUND_LENGTH) -> float:
  """Rounds and normalises -0.0 to 0.0 (so mirrored zeros print identically)."""
  out = round(float(value), digits)
  return 0.0 if out == 0.0 else out


def _rv(vec, digits: int = ROUND_LENGTH) -> tuple[float, float, float]:
  return tuple(_r(v, digits) for v in vec)


def _add(a, b):
  return tuple(x + y for x, y in zip(a, b))


def _sub(a, b):
  return tuple(x - y for x, y in zip(a, b))


def _mul(s, a):
  return tuple(s * x for x in a)


def _unit(a):
  n = math.sqrt(sum(x * x for x in a))
  return tuple(x / n for x in a)


def _cross(a, b):
  return (a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0])


def mirror_point(p):
  """Right-side point -> left-side point (reflection in the sagittal plane)."""
  return (p[0], p[1], -p[2])


def mirror_axis(a):
  """Right-side rotation axis -> left-side axis giving the same anatomical sign."""
  return (-a[0], -a[1], a[2])


# =============================================================================
# 1. Literature data
# =============================================================================

@dataclass(frozen=True)
class DeLevaSegment:
  """One row of [deLeva96] Table 4 (males).

  length_mm: between the two endpoints for the reference subject.
  mass_pct: % of body mass. cm_pct: mass-centre position, % of length from the
  *first* endpoint. r_*_pct: radii of gyration about the sagittal
  (antero-posterior), transverse (medio-lateral) and longitudinal axes, % of
  length. ("Sagittal axis" is read in its anatomical sense, i.e. the
  antero-posterior axis; the two transverse radii differ by at most a few
  per cent, so the other reading would change little.)
  """
  first: str
  second: str
  length_mm: float
  mass_pct: float
  cm_pct: float
  r_sag_pct: float
  r_trans_pct: float
  r_long_pct: float


# Source: [deLeva96] Table 4, male columns (endpoint abbreviations as in the paper:
# VERT vertex, GON mid-gonion, CERV cervicale, SUPR suprasternale, XYPH xiphion,
# OMPH omphalion, MIDH mid-hip-joint-centres, SJC/EJC/WJC/HJC/KJC joint centres,
# MET3 3rd metacarpale, LMAL lateral malleolus, HEEL, TTIP tip of longest toe).
DE_LEVA_REFERENCE_STATURE = 1.741  # m, [deLeva96] male reference subject
DE_LEVA_MALE = {
    'head':      DeLevaSegment('VERT', 'GON', 203.3, 6.94, 59.76, 36.2, 37.6, 31.2),
    'upper_trunk': DeLevaSegment('SUPR', 'XYPH', 170.7, 15.96, 29.99, 71.6, 45.4, 65.9),
    'mid_trunk':   DeLevaSegment('XYPH', 'OMPH', 215.5, 16.33, 45.02, 48.2, 38.3, 46.8),
    'lower_trunk': DeLevaSegment('OMPH', 'MIDH', 145.7, 11.17, 61.15, 61.5, 55.1, 58.7),
    'upper_arm': DeLevaSegment('SJC', 'EJC', 281.7, 2.71, 57.72, 28.5, 26.9, 15.8),
    'forearm':   DeLevaSegment('EJC', 'WJC', 268.9, 1.62, 45.74, 27.6, 26.5, 12.1),
    'hand':      DeLevaSegment('WJC', 'MET3', 86.2, 0.61, 79.00, 62.8, 51.3, 40.1),
    'thigh':     DeLevaSegment('HJC', 'KJC', 422.2, 14.16, 40.95, 32.9, 32.9, 14.9),
    'shank':     DeLevaSegment('KJC', 'LMAL', 434.0, 4.33, 44.59, 25.5, 24.9, 10.3),
    'foot':      DeLevaSegment('HEEL', 'TTIP', 258.1, 1.37, 44.15, 25.7, 24.5, 12.4),
}
# Source: [deLeva96] Table 4, alternative trunk definitions (males): CERV-MIDH
# 603.3 mm vs SUPR-MIDH 531.9 mm; their difference places C7 above the jugular notch.
DE_LEVA_CERV_MIDH_MM = 603.3
DE_LEVA_SUPR_MIDH_MM = 531.9

# Segment lengths are scaled isometrically from the de Leva subject to STATURE.
LENGTH_SCALE = STATURE / DE_LEVA_REFERENCE_STATURE


def de_leva_length(segment: str) -> float:
  """Segment length in metres for the model subject."""
  return DE_LEVA_MALE[segment].length_mm / 1000.0 * LENGTH_SCALE


def de_leva_mass(segment: str) -> float:
  return DE_LEVA_MALE[segment].mass_pct / 100.0 * BODY_MASS


# Source: [Winter09] Fig. 4.1 (Drillis & Contini 1966): ankle joint height 0.039 H.
ANKLE_HEIGHT = 0.039 * STATURE

# Source: [Bell90] regression of the hip joint centre in the ASIS-midpoint frame,
# as fractions of the inter-ASIS distance (posterior, inferior, lateral).
BELL_HJC_FRACTIONS = (-0.19, -0.30, 0.36)
# Project estimate: inter-ASIS (bispinous) distance of an adult male, 0.23 m (the
# adult range is roughly 0.21-0.26 m); it fixes the pelvis width and the HJC.
INTER_ASIS_DISTANCE = 0.23
# Project estimates: distance from the ASIS midpoint back to the PSIS midpoint
# (pelvis depth) 0.155 m, and inter-PSIS distance 0.09 m (PSIS dimples).
PELVIS_DEPTH = 0.155
INTER_PSIS_DISTANCE = 0.09

# Source: [Inman76] talocrural axis at ~82 deg to the tibial axis in the frontal
# plane, i.e. its lateral end ~8 deg below the medio-lateral direction. The lateral
# end is also placed 6 deg posterior (project estimate of a small external
# rotation; tibial torsion and toe-out are not represented).
ANKLE_AXIS_FRONTAL_DEG = 8.0
ANKLE_AXIS_TRANSVERSE_DEG = 6.0
# Source: [Inman76] subtalar axis: 42 deg elevation from the horizontal plane, 23 deg
# medial deviation from the long axis of the foot (anterior-superior-medial).
SUBTALAR_ELEVATION_DEG = 42.0
SUBTALAR_MEDIAL_DEG = 23.0

# Project estimate: elbow carrying angle (valgus of the forearm in extension) of
# 10 deg, inside the commonly quoted adult-male range of about 5-15 deg.
CARRYING_ANGLE_DEG = 10.0

# Project estimates for breadths used to place paired landmarks (typical adult-
# male bony breadths, rounded): femoral bicondylar 0.10 m, humeral biepicondylar
# 0.07 m, bimalleolar 0.07 m, wrist (bistyloid) 0.06 m, biacromial 0.40 m.
FEMUR_BICONDYLAR = 0.10
HUMERUS_BIEPICONDYLAR = 0.07
BIMALLEOLAR = 0.07
WRIST_BISTYLOID = 0.06
BIACROMIAL = 0.40

# Source: anthropometric surveys define the "ball of foot length" (heel to the 1st
# metatarsal head); project estimate of its ratio to foot length 0.73. The fifth
# metatarsal head lies 35 mm further back, so that the MT1-MT5 line makes ~60 deg
# with the long axis of the foot ([Isman69]: 50-70 deg).
BALL_OF_FOOT_FRACTION = 0.73
MT5_SETBACK = 0.035

# Project estimates: head length (glabella-opisthocranion) 0.197 m and breadth
# 0.155 m, typical adult-male values; the head-band markers lie 0.09 m below the
# vertex.
HEAD_LENGTH = 0.197
HEAD_BREADTH = 0.155
HEAD_BAND_DROP = 0.09

# =============================================================================
# 2. Derived geometry (right side; each point in its body's frame)
# =============================================================================

L_THIGH = de_leva_length('thigh')          # HJC -> KJC
L_SHANK = de_leva_length('shank')          # KJC -> AJC (lateral malleolus level)
L_FOOT = de_leva_length('foot')            # heel -> toe tip
L_UPPER_ARM = de_leva_length('upper_arm')  # SJC -> EJC
L_FOREARM = de_leva_length('forearm')      # EJC -> WJC
L_HAND = de_leva_length('hand')            # WJC -> 3rd metacarpal head
L_LOWER_TRUNK = de_leva_length('lower_trunk')  # OMPH -> MIDH
L_MID_TRUNK = de_leva_length('mid_trunk')      # XYPH -> OMPH
L_UPPER_TRUNK = de_leva_length('upper_trunk')  # SUPR -> XYPH
L_HEAD = de_leva_length('head')                # VERT -> GON

# ---- pelvis: origin at the midpoint of the two ASIS ----------------------------
HIP_IN_PELVIS = tuple(f * INTER_ASIS_DISTANCE for f in BELL_HJC_FRACTIONS)  # [Bell90]
# The lumbar ("back") joint sits at the omphalion level, i.e. the upper end of the
# de Leva lower trunk, L_LOWER_TRUNK above the mid-hip point. Its antero-posterior
# position, 0.10 m behind the ASIS plane (front of the lumbar vertebral bodies'
# centre line), is a project estimate.
LUMBAR_IN_PELVIS = (-0.10, HIP_IN_PELVIS[1] + L_LOWER_TRUNK, 0.0)

# ---- legs -----------------------------------------------------------------------
KNEE_IN_FEMUR = (0.0, -L_THIGH, 0.0)      # knee directly below the hip at zero pose
ANKLE_IN_TIBIA = (0.0, -L_SHANK, 0.0)     # ankle directly below the knee
FLOOR_BELOW_ANKLE = ANKLE_HEIGHT          # [Winter09]

# Ankle axis (right; points laterally) in the tibia frame, [Inman76].
_fa, _ta = math.radians(ANKLE_AXIS_FRONTAL_DEG), math.radians(ANKLE_AXIS_TRANSVERSE_DEG)
ANKLE_AXIS = _unit((-math.sin(_ta) * math.cos(_fa), -math.sin(_fa), math.cos(_ta) * math.cos(_fa)))

# Subtalar axis (right; points anterior-superior-medial) in the talus frame, [Inman76].
_se, _sm = math.radians(SUBTALAR_ELEVATION_DEG), math.radians(SUBTALAR_MEDIAL_DEG)
SUBTALAR_AXIS = _unit((math.cos(_se) * math.cos(_sm), math.sin(_se), -math.cos(_se) * math.sin(_sm)))
# Project estimate: a point of the subtalar axis 15 mm behind, 30 mm below and 5 mm
# lateral of the ankle centre (talocalcaneal interface). With the axis above, the
# line exits the sole posterolaterally under the heel and passes the talar neck
# supero-medially, as [Inman76] describes.
SUBTALAR_IN_TALUS = (-0.015, -0.030, 0.005)

# Foot landmarks, first expressed relative to the ankle centre (zero pose).
_FLOOR = -FLOOR_BELOW_ANKLE
# Project estimate: the back of the heel lies 55 mm behind the ankle centre.
_HEEL_X = -0.055
_TOE_TIP_X = _HEEL_X + L_FOOT                                  # [deLeva96] foot length
_MT1_X = _HEEL_X + BALL_OF_FOOT_FRACTION * L_FOOT
_MT1_CENTRE = (_MT1_X, _FLOOR + 0.020, -0.025)                 # head centre, 20 mm above floor
_MT5_CENTRE = (_MT1_X - MT5_SETBACK, _FLOOR + 0.020, 0.035)    # 60 mm lateral of MT1
MTP_IN_ANKLE = _mul(0.5, _add(_MT1_CENTRE, _MT5_CENTRE))
# MTP axis (right): along the metatarsal-head line, pointing antero-medially, so
# that positive mtp_angle flexes the toes (Rajagopal sign convention).
MTP_AXIS = _unit(_sub(_MT1_CENTRE, _MT5_CENTRE))
MTP_IN_CALCN = _sub(MTP_IN_ANKLE, SUBTALAR_IN_TALUS)


def _foot_point_in_calcn(p_ankle):
  return _sub(p_ankle, SUBTALAR_IN_TALUS)


def _foot_point_in_toes(p_ankle):
  return _sub(p_ankle, MTP_IN_ANKLE)


# ---- torso: origin at the lumbar joint (omphalion level) ---------------------------
SUPR_IN_TORSO = (0.10, L_MID_TRUNK + L_UPPER_TRUNK, 0.0)     # jugular notch, [deLeva96]
XYPH_IN_TORSO = (0.12, L_MID_TRUNK, 0.0)                     # xiphoid, [deLeva96]
C7_IN_TORSO = (-0.04, SUPR_IN_TORSO[1]
               + (DE_LEVA_CERV_MIDH_MM - DE_LEVA_SUPR_MIDH_MM) / 1000.0 * LENGTH_SCALE, 0.0)
T10_IN_TORSO = (-0.09, XYPH_IN_TORSO[1], 0.0)
# Antero-posterior positions above are project estimates: jugular notch above the
# ASIS plane, C7 0.14 m behind it, chest depth 0.21 m at the xiphoid level.
# Project estimate: glenohumeral centre 30 mm below the jugular-notch level, 0.17 m
# lateral of the midline and below the acromion tip (acromion 40 mm higher and
# BIACROMIAL/2 lateral); its x (0.05 m) puts the shoulder above the hip joint in the
# standing posture (plumb line through acromion and greater trochanter).
SHOULDER_IN_TORSO = (0.05, SUPR_IN_TORSO[1] - 0.03, 0.17)
ACROMION_IN_TORSO = (0.05, SHOULDER_IN_TORSO[1] + 0.04, BIACROMIAL / 2.0)


# ---- arm --------------------------------------------------------------------------
ELBOW_IN_HUMERUS = (0.0, -L_UPPER_ARM, 0.0)
_ca = math.radians(CARRYING_ANGLE_DEG)
# Long axis of forearm and hand (right; distal, deviating laterally by the carrying
# angle) and the matching medio-lateral direction (right; lateral) in the frontal plane.
FOREARM_DIR = (0.0, -math.cos(_ca), math.sin(_ca))
FOREARM_LATERAL = (0.0, math.sin(_ca), math.cos(_ca))
WRIST_IN_ULNA = _mul(L_FOREARM, FOREARM_DIR)
RADIAL_STYLOID_IN_ULNA = _add(WRIST_IN_ULNA, _mul(WRIST_BISTYLOID / 2, FOREARM_LATERAL))   # [Wu05]
ULNAR_STYLOID_IN_ULNA = _sub(WRIST_IN_ULNA, _mul(WRIST_BISTYLOID / 2, FOREARM_LATERAL))
# Project estimates: radial-head centre 10 mm below and 20 mm lateral of the elbow
# centre (below the capitulum); ulnar-head centre 10 mm proximal and 20 mm medial of
# the wrist centre. Pronation-supination turns the radius about the line joining them.
RADIOULNAR_IN_ULNA = (0.0, -0.010, 0.020)
_ULNAR_HEAD = _sub(_sub(WRIST_IN_ULNA, _mul(0.010, FOREARM_DIR)), _mul(0.020, FOREARM_LATERAL))
# Axis (right) pointing proximally: positive pro_sup pronates (Rajagopal convention).
PRO_SUP_AXIS = _unit(_sub(RADIOULNAR_IN_ULNA, _ULNAR_HEAD))
WRIST_IN_RADIUS = _sub(WRIST_IN_ULNA, RADIOULNAR_IN_ULNA)
# Wrist (UniversalJoint) axes, right side: flexion about the medio-lateral axis
# (positive = palmar flexion), deviation about the antero-posterior axis (positive =
# ulnar deviation), as in Rajagopal et al. 2016.
WRIST_FLEX_AXIS = FOREARM_LATERAL
WRIST_DEV_AXIS = (1.0, 0.0, 0.0)
MCP3_IN_HAND = _mul(L_HAND, FOREARM_DIR)          # [deLeva96] hand length WJC-MET3

# ---- head (in the torso frame) --------------------------------------------------------
# The vertex is placed at STATURE in the default standing pose (computed below once
# the default pelvis height is known); the head centre (midpoint glabella-
# opisthocranion) is 10 mm anterior to the shoulder, i.e. the ear above the acromion.
HEAD_CENTRE_X = SHOULDER_IN_TORSO[0] + 0.01

# ---- default pelvis height --------------------------------------------------------------
# Feet flat on the floor (y = 0) in the zero pose: floor -> ankle -> knee -> hip -> ASIS.
PELVIS_DEFAULT_HEIGHT = FLOOR_BELOW_ANKLE + L_SHANK + L_THIGH - HIP_IN_PELVIS[1]
VERTEX_IN_TORSO = (HEAD_CENTRE_X - 0.01,
                   STATURE - PELVIS_DEFAULT_HEIGHT - LUMBAR_IN_PELVIS[1], 0.0)
HEAD_BAND_Y = VERTEX_IN_TORSO[1] - HEAD_BAND_DROP


def _head_point(angle_deg):
  """Point of the head-band ellipse; 0 deg = front, +90 deg = right."""
  a = math.radians(angle_deg)
  return (HEAD_CENTRE_X + HEAD_LENGTH / 2 * math.cos(a), HEAD_BAND_Y,
          HEAD_BREADTH / 2 * math.sin(a))


# =============================================================================
# 3. Knee kinematics (splines of the knee flexion angle)
# =============================================================================

# Knots: 0..120 deg of knee flexion in 10 deg steps (radians), rounded to the 6
# significant digits with which OpenSim writes spline abscissae, so that the table
# and the written file hold the same numbers.
KNEE_KNOTS = tuple(float(f'{math.radians(10.0 * i):.6g}') for i in range(13))

# Source: [Walker88] tibiofemoral and [Yamaguchi & Zajac 1989] patellofemoral
# kinematics in the form used by the Rajagopal et al. (2016) walker knee, values as
# tabulated in the project dossier (research/banet-paper-and-official-code.md,
# Appendix A), right side. Axes are given in the femur frame (see KNEE_JOINT below).
KNEE_SPLINES = {
    # tibial adduction (varus) rotation about the antero-posterior axis, rad
    'tibia_adduction': (0.0, 0.01268, 0.02270, 0.02961, 0.03320, 0.03354, 0.03088,
                        0.02575, 0.01893, 0.01141, 0.00443, -0.00050, -0.00168),
    # tibial internal rotation about the long axis (screw-home reversed), rad
    'tibia_rotation': (0.0, 0.05946, 0.10940, 0.15062, 0.18392, 0.21011, 0.22998,
                       0.24435, 0.25401, 0.25977, 0.26243, 0.26279, 0.26165),
    # anterior translation of the tibia relative to the femur (roll-back), m
    'tibia_anterior': (0.0, 0.00099, 0.00190, 0.00273, 0.00349, 0.00417, 0.00478,
                       0.00530, 0.00576, 0.00613, 0.00643, 0.00665, 0.00679),
    # superior translation of the tibia, m
    'tibia_superior': (0.0, 0.00048, 0.00084, 0.00109, 0.00125, 0.00135, 0.00139,
                       0.00140, 0.00140, 0.00140, 0.00142, 0.00148, 0.00160),
    # patellar rotation about the medio-lateral axis (negative = tilts with flexion), rad
    'patella_rotation': (0.00114, -0.00629, -0.10558, -0.25368, -0.41424, -0.57905,
                         -0.74724, -0.91799, -1.09044, -1.26379, -1.43763, -1.61186,
                         -1.78634),
    # patellar origin, anterior of the knee centre, m
    'patella_anterior': (0.0524, 0.0488, 0.0437, 0.0371, 0.0296, 0.0216, 0.0136,
                         0.0057, -0.0019, -0.0088, -0.0148, -0.0196, -0.0227),
    # patellar origin, superior of the knee centre, m
    'patella_superior': (-0.0108, -0.0190, -0.0263, -0.0322, -0.0367, -0.0395,
                         -0.0408, -0.0404, -0.0384, -0.0349, -0.0301, -0.0245, -0.0187),
}


# =============================================================================
# 4. Coordinates: names, order, ranges, defaults
# =============================================================================

@dataclass(frozen=True)
class CoordinateSpec:
  name: str
  lower: float           # rad or m
  upper: float
  default: float = 0.0
  translational: bool = False
  source: str = ''


def _deg(lo, hi):
  return _r(math.radians(lo), ROUND_ANGLE), _r(math.radians(hi), ROUND_ANGLE)


# Ranges in degrees (rotations) or metres, right side; the left side uses the same
# values because the sign conventions are mirrored. Sign conventions (Rajagopal):
#   hip_flexion +flexion, hip_adduction +adduction, hip_rotation +internal;
#   knee_angle +flexion; ankle_angle +dorsiflexion; subtalar_angle +inversion;
#   mtp_angle +toe flexion; lumbar_extension +extension; arm_flex +flexion;
#   arm_add +adduction; arm_rot +internal; elbow_flex +flexion; pro_sup +pronation
#   (0 = palm forward); wrist_flex +palmar flexion; wrist_dev +ulnar deviation.
_ROM_DEG = {
    # [AAOS65]: flexion 120, extension 30
    'hip_flexion': ((-30.0, 120.0), '[AAOS65] hip flexion 120, extension 30'),
    # [AAOS65]: abduction 45, adduction 30
    'hip_adduction': ((-45.0, 30.0), '[AAOS65] hip abduction 45, adduction 30'),
    # [AAOS65]: internal 45, external 45
    'hip_rotation': ((-45.0, 45.0), '[AAOS65] hip internal 45, external 45'),
    # [AAOS65] gives 135 deg of flexion; the range stops at 120 deg, the end of the
    # [Walker88] knee data (KNEE_KNOTS), beyond which the splines would extrapolate.
    'knee_angle': ((0.0, 120.0), '[AAOS65] knee flexion 135, limited to the 0-120 spline data'),
    # [AAOS65]: dorsiflexion 20, plantar flexion 50
    'ankle_angle': ((-50.0, 20.0), '[AAOS65] ankle dorsiflexion 20, plantar flexion 50'),
    # [AAOS65]: inversion 35, eversion 15
    'subtalar_angle': ((-15.0, 35.0), '[AAOS65] foot inversion 35, eversion 15'),
    # [AAOS65] first MTP joint: flexion 45, extension 70
    'mtp_angle': ((-70.0, 45.0), '[AAOS65] 1st MTP flexion 45, extension 70'),
    # [AAOS65] thoracolumbar spine: flexion 80, extension 25, lateral 35, rotation 45
    'lumbar_extension': ((-80.0, 25.0), '[AAOS65] trunk flexion 80, extension 25'),
    'lumbar_bending': ((-35.0, 35.0), '[AAOS65] trunk lateral flexion 35'),
    'lumbar_rotation': ((-45.0, 45.0), '[AAOS65] trunk rotation 45'),
    # [AAOS65] shoulder: flexion 180, extension 60, abduction 180, internal 70,
    # external 90. Adduction +45 deg is a project allowance for cross-body reaching
    # (horizontal adduction) that a frontal-plane 0-deg limit would forbid.
    'arm_flex': ((-60.0, 180.0), '[AAOS65] shoulder flexion 180, extension 60'),
    'arm_add': ((-180.0, 45.0), '[AAOS65] shoulder abduction 180; +45 adduction allowance'),
    'arm_rot': ((-90.0, 70.0), '[AAOS65] shoulder internal 70, external 90'),
    # [AAOS65]: elbow flexion 150
    'elbow_flex': ((0.0, 150.0), '[AAOS65] elbow flexion 150'),
    # [AAOS65]: pronation 80 + supination 80 from thumb-up; zero here is the palm-
    # forward anatomical position (full supination), so the arc is 0..160.
    'pro_sup': ((0.0, 160.0), '[AAOS65] pronation 80 + supination 80 arc'),
    # [AAOS65]: wrist flexion 80, extension 70, radial 20, ulnar 30
    'wrist_flex': ((-70.0, 80.0), '[AAOS65] wrist flexion 80, extension 70'),
    'wrist_dev': ((-20.0, 30.0), '[AAOS65] wrist radial 20, ulnar 30'),
}


def _rom(name_root: str, side: str = '') -> CoordinateSpec:
  (lo, hi), src = _ROM_DEG[name_root]
  lo_r, hi_r = _deg(lo, hi)
  return CoordinateSpec(name_root + side, lo_r, hi_r, 0.0, False, src)


def _leg_coordinates(s: str):
  knee = _rom('knee_angle', s)
  return [
      _rom('hip_flexion', s), _rom('hip_adduction', s), _rom('hip_rotation', s),
      knee,
      # knee_angle_*_beta is tied to knee_angle_* by a CoordinateCouplerConstraint;
      # its range equals the knee range.
      CoordinateSpec(f'knee_angle{s}_beta', knee.lower, knee.upper, 0.0, False,
                     'equal to knee_angle (coupled)'),
      _rom('ankle_angle', s), _rom('subtalar_angle', s), _rom('mtp_angle', s),
  ]


def _arm_coordinates(s: str):
  return [_rom(n, s) for n in ('arm_flex', 'arm_add', 'arm_rot', 'elbow_flex', 'pro_sup',
                               'wrist_flex', 'wrist_dev')]


# The order is the model's coordinate order (== Rajagopal2016's getCoordinateSet()).
COORDINATES: tuple[CoordinateSpec, ...] = tuple(
    [
        # Free-body pelvis: orientation limits are not anatomical (tilt and list at
        # +-90 deg keep the body-fixed Z-X-Y sequence away from gimbal lock;
        # rotation covers any heading); translations cover a large capture volume.
        CoordinateSpec('pelvis_tilt', *_deg(-90, 90), 0.0, False, 'free body'),
        CoordinateSpec('pelvis_list', *_deg(-90, 90), 0.0, False, 'free body'),
        CoordinateSpec('pelvis_rotation', *_deg(-180, 180), 0.0, False, 'free body'),
        CoordinateSpec('pelvis_tx', -10.0, 10.0, 0.0, True, 'capture volume'),
        CoordinateSpec('pelvis_ty', -1.0, 3.0, _r(PELVIS_DEFAULT_HEIGHT), True,
                       'default: feet on the floor'),
        CoordinateSpec('pelvis_tz', -10.0, 10.0, 0.0, True, 'capture volume'),
    ]
    + _leg_coordinates('_r') + _leg_coordinates('_l')
    + [_rom('lumbar_extension'), _rom('lumbar_bending'), _rom('lumbar_rotation')]
    + _arm_coordinates('_r') + _arm_coordinates('_l'))

# Coordinate ranges are written with <clamped>false</clamped> so that externally
# produced motions are replayed unchanged; set CLAMP_COORDINATES to True to make
# OpenSim (e.g. its IK) enforce them.
CLAMP_COORDINATES = False


# =============================================================================
# 5. Bodies: mass properties
# =============================================================================

@dataclass(frozen=True)
class BodySpec:
  name: str
  mass: float
  mass_center: tuple[float, float, float]
  # Inertia about the mass centre in the body frame: Ixx, Iyy, Izz, Ixy, Ixz, Iyz.
  inertia: tuple[float, float, float, float, float, float]
  source: str


def _seg_inertia(segment: str, mass: float, length: Optional[float] = None,
                 long_axis: str = 'y'):
  """Principal moments from [deLeva96] radii: (Ixx, Iyy, Izz)."""
  s = DE_LEVA_MALE[segment]
  length = de_leva_length(segment) if length is None else length
  r_sag, r_trans, r_long = (p / 100.0 * length for p in (s.r_sag_pct, s.r_trans_pct, s.r_long_pct))
  if long_axis == 'y':     # sagittal (antero-posterior) = x, transverse (medio-lateral) = z
    rx, ry, rz = r_sag, r_long, r_trans
  else:                    # foot: long axis = x; vertical = y, medio-lateral = z
    rx, ry, rz = r_long, r_trans, r_sag
  return (mass * rx * rx, mass * ry * ry, mass * rz * rz)


def _combine(parts):
  """Combines (mass, cm, (Ixx, Iyy, Izz, Ixy, Ixz, Iyz)) parts into one rigid body."""
  m = sum(p[0] for p in parts)
  cm = _mul(1.0 / m, tuple(sum(p[0] * p[1][k] for p in parts) for k in range(3)))
  ixx = iyy = izz = ixy = ixz = iyz = 0.0
  for mi, ci, ii in parts:
    dx, dy, dz = _sub(ci, cm)
    ixx += ii[0] + mi * (dy * dy + dz * dz)
    iyy += ii[1] + mi * (dx * dx + dz * dz)
    izz += ii[2] + mi * (dx * dx + dy * dy)
    ixy += ii[3] - mi * dx * dy
    ixz += ii[4] - mi * dx * dz
    iyz += ii[5] - mi * dy * dz
  return m, cm, (ixx, iyy, izz, ixy, ixz, iyz)


def _body(name, mass, cm, inertia, source) -> BodySpec:
  inertia = tuple(inertia) + (0.0,) * (6 - len(inertia))
  return BodySpec(name, _r(mass, ROUND_MASS), _rv(cm), tuple(_r(i, ROUND_MASS + 3) for i in inertia),
                  source)


def _along(p0, p1, fraction):
  return _add(p0, _mul(fraction, _sub(p1, p0)))


# Project estimates for the small bodies that de Leva does not separate: patella
# 0.1 kg (taken from the thigh, modelled as a 20 mm-radius sphere); the de Leva foot
# is split 10 % talus, 80 % calcaneus + midfoot, 10 % toes (talus: 25 mm-radius
# sphere; toes: 70 x 20 x 90 mm box).
PATELLA_MASS = 0.1
FOOT_SPLIT = {'talus': 0.10, 'calcn': 0.80, 'toes': 0.10}


def _sphere(m, radius):
  i = 0.4 * m * radius * radius
  return (i, i, i)


def _box(m, lx, ly, lz):
  return (m * (ly * ly + lz * lz) / 12, m * (lx * lx + lz * lz) / 12, m * (lx * lx + ly * ly) / 12)


def _right_bodies():
  bodies = {}
  d = DE_LEVA_MALE
  # pelvis = de Leva lower trunk (OMPH -> MIDH), CM 61.15 % of the way down.
  omph, midh = LUMBAR_IN_PELVIS, (LUMBAR_IN_PELVIS[0], HIP_IN_PELVIS[1], 0.0)
  cm = _along(omph, midh, d['lower_trunk'].cm_pct / 100)
  # Project estimate: the pelvic mass centre lies 0.07 m behind the ASIS plane,
  # between the ASIS and the sacrum.
  cm = (-0.07, cm[1], 0.0)
  m = de_leva_mass('lower_trunk')
  bodies['pelvis'] = _body('pelvis', m, cm, _seg_inertia('lower_trunk', m),
                           '[deLeva96] lower trunk (OMPH-MIDH)')
  # femur = de Leva thigh minus the patella.
  m = de_leva_mass('thigh') - PATELLA_MASS
  bodies['femur'] = _body('femur', m, _along((0, 0, 0), KNEE_IN_FEMUR, d['thigh'].cm_pct / 100),
                          _seg_inertia('thigh', m), '[deLeva96] thigh, less the patella')
  bodies['patella'] = _body('patella', PATELLA_MASS, (0.0, 0.0, 0.0),
                            _sphere(PATELLA_MASS, 0.02), 'project estimate')
  m = de_leva_mass('shank')
  bodies['tibia'] = _body('tibia', m, _along((0, 0, 0), ANKLE_IN_TIBIA, d['shank'].cm_pct / 100),
                          _seg_inertia('shank', m), '[deLeva96] shank (KJC-LMAL)')
  # Foot: de Leva CM at 44.15 % from the heel along heel -> toe tip; its height, 35 mm
  # above the floor, is a project estimate. Parts placed so that the whole-foot CM
  # equals the de Leva one.
  m_foot = de_leva_mass('foot')
  foot_cm = (_HEEL_X + d['foot'].cm_pct / 100 * L_FOOT, _FLOOR + 0.035, 0.0)
  m_talus, m_toes = FOOT_SPLIT['talus'] * m_foot, FOOT_SPLIT['toes'] * m_foot
  m_calcn = m_foot - m_talus - m_toes
  talus_cm = (0.0, 0.0, 0.0)
  toes_cm = (0.5 * (MTP_IN_ANKLE[0] + _TOE_TIP_X), _FLOOR + 0.015, -0.005)
  calcn_cm = _mul(1.0 / m_calcn, _sub(_sub(_mul(m_foot, foot_cm), _mul(m_talus, talus_cm)),
                                      _mul(m_toes, toes_cm)))
  bodies['talus'] = _body('talus', m_talus, talus_cm, _sphere(m_talus, 0.025),
                          '[deLeva96] foot x 10 % (project split)')
  bodies['calcn'] = _body('calcn', m_calcn, _foot_point_in_calcn(calcn_cm),
                          _seg_inertia('foot', m_calcn, long_axis='x'),
                          '[deLeva96] foot x 80 % (project split)')
  bodies['toes'] = _body('toes', m_toes, _foot_point_in_toes(toes_cm),
                         _box(m_toes, 0.07, 0.02, 0.09), '[deLeva96] foot x 10 % (project split)')
  m = de_leva_mass('upper_arm')
  bodies['humerus'] = _body('humerus', m, _along((0, 0, 0), ELBOW_IN_HUMERUS,
                                                 d['upper_arm'].cm_pct / 100),
                            _seg_inertia('upper_arm', m), '[deLeva96] upper arm (SJC-EJC)')
  # Forearm split equally between ulna and radius (project choice); both halves
  # carry the de Leva forearm CM and radii, so their sum is the de Leva forearm.
  m = de_leva_mass('forearm') / 2
  fcm = _mul(d['forearm'].cm_pct / 100, WRIST_IN_ULNA)
  bodies['ulna'] = _body('ulna', m, fcm, _seg_inertia('forearm', m),
                         '[deLeva96] forearm x 1/2')
  bodies['radius'] = _body('radius', m, _sub(fcm, RADIOULNAR_IN_ULNA), _seg_inertia('forearm', m),
                           '[deLeva96] forearm x 1/2')
  m = de_leva_mass('hand')
  bodies['hand'] = _body('hand', m, _mul(d['hand'].cm_pct / 100, MCP3_IN_HAND),
                         _seg_inertia('hand', m), '[deLeva96] hand (WJC-MET3)')
  # torso = de Leva head + upper trunk + middle trunk, combined with the parallel-
  # axis theorem. Project estimate: trunk-part CMs at x = 0.02 m (mid-depth between
  # sternum and spine), head CM on the head centre line.
  head_cm = (HEAD_CENTRE_X, VERTEX_IN_TORSO[1] - d['head'].cm_pct / 100 * L_HEAD, 0.0)
  upt_cm = (0.02, SUPR_IN_TORSO[1] - d['upper_trunk'].cm_pct / 100 * L_UPPER_TRUNK, 0.0)
  mpt_cm = (0.02, XYPH_IN_TORSO[1] - d['mid_trunk'].cm_pct / 100 * L_MID_TRUNK, 0.0)
  parts = []
  for seg, pcm in (('head', head_cm), ('upper_trunk', upt_cm), ('mid_trunk', mpt_cm)):
    mi = de_leva_mass(seg)
    parts.append((mi, pcm, _seg_inertia(seg, mi) + (0.0, 0.0, 0.0)))
  m, cm, inertia = _combine(parts)
  bodies['torso'] = _body('torso', m, cm, inertia, '[deLeva96] head + upper + middle trunk')
  return bodies


def _mirror_body(b: BodySpec, name: str) -> BodySpec:
  ixx, iyy, izz, ixy, ixz, iyz = b.inertia
  # Reflection z -> -z flips the sign of the products involving z.
  return BodySpec(name, b.mass, _rv(mirror_point(b.mass_center)),
                  (ixx, iyy, izz, ixy, _r(-ixz, ROUND_MASS + 3), _r(-iyz, ROUND_MASS + 3)), b.source)


def _all_bodies():
  rb = _right_bodies()

  def side(root, s):
    b = rb[root]
    name = f'{root}_{s}'
    if s == 'r':
      return BodySpec(name, b.mass, b.mass_center, b.inertia, b.source)
    return _mirror_body(b, name)

  out = [rb['pelvis']]
  for s in ('r', 'l'):
    for root in ('femur', 'tibia', 'patella', 'talus', 'calcn', 'toes'):
      out.append(side(root, s))
  out.append(rb['torso'])
  for s in ('r', 'l'):
    for root in ('humerus', 'ulna', 'radius', 'hand'):
      out.append(side(root, s))
  return tuple(out)


# Body order == Rajagopal2016's body set order.
BODIES: tuple[BodySpec, ...] = _all_bodies()


# =============================================================================
# 6. Joints
# =============================================================================

@dataclass(frozen=True)
class AxisSpec:
  """One TransformAxis of a CustomJoint (axis in the joint frame = parent body axes).

  function: ('linear',) identity of `coordinate`; ('constant', value); or
  ('spline', knots, values) of `coordinate` (an OpenSim SimmSpline).
  """
  axis: tuple[float, float, float]
  coordinate: Optional[str]
  function: tuple


@dataclass(frozen=True)
class JointSpec:
  name: str
  kind: str            # 'CustomJoint' | 'PinJoint' | 'UniversalJoint'
  parent: str          # body name or 'ground'
  child: str
  location_in_parent: tuple[float, float, float]
  location_in_child: tuple[float, float, float]
  coordinates: tuple[str, ...]
  # CustomJoint: 3 rotation then 3 translation AxisSpecs; joint frames are parallel
  # to the body frames. PinJoint: rotation axis (the joint frame's z). Universal-
  # Joint: first and second axes (the joint frame's x and y).
  axes: tuple = ()
  source: str = ''


_LIN = ('linear',)
_ZERO = ('constant', 0.0)
_EX, _EY, _EZ = (1.0, 0.0, 0.0), (0.0, 1.0, 0.0), (0.0, 0.0, 1.0)


def _spline(key):
  return ('spline', KNEE_KNOTS, KNEE_SPLINES[key])


def _ball_like(name, parent, child, loc, coords, side):
  """Hip / shoulder / back: Z-X-Y body-fixed rotations, no translation."""
  ax_x, ax_y = (_EX, _EY) if side != 'l' else (mirror_axis(_EX), mirror_axis(_EY))
  return JointSpec(name, 'CustomJoint', parent, child, _rv(loc), (0.0, 0.0, 0.0), tuple(coords), (
      AxisSpec(_EZ, coords[0], _LIN), AxisSpec(ax_x, coords[1], _LIN),
      AxisSpec(ax_y, coords[2], _LIN),
      AxisSpec(_EX, None, _ZERO), AxisSpec(_EY, None, _ZERO), AxisSpec(_EZ, None, _ZERO)))


def _leg_joints(s):
  mp = (lambda p: p) if s == 'r' else mirror_point
  ma = (lambda a: a) if s == 'r' else mirror_axis
  knee, beta = f'knee_angle_{s}', f'knee_angle_{s}_beta'
  return [
      _ball_like(f'hip_{s}', 'pelvis', f'femur_{s}', mp(HIP_IN_PELVIS),
                 [f'hip_flexion_{s}', f'hip_adduction_{s}', f'hip_rotation_{s}'], s),
      # Walker knee: flexion about the femoral medio-lateral axis (positive flexes),
      # then spline-driven adduction and internal rotation, plus spline-driven
      # anterior and superior tibial translation [Walker88].
      JointSpec(f'walker_knee_{s}', 'CustomJoint', f'femur_{s}', f'tibia_{s}',
                _rv(mp(KNEE_IN_FEMUR)), (0.0, 0.0, 0.0), (knee,), (
                    AxisSpec(ma((0.0, 0.0, -1.0)), knee, _LIN),
                    AxisSpec(ma(_EX), knee, _spline('tibia_adduction')),
                    AxisSpec(ma(_EY), knee, _spline('tibia_rotation')),
                    AxisSpec(_EX, knee, _spline('tibia_anterior')),
                    AxisSpec(_EY, knee, _spline('tibia_superior')),
                    AxisSpec(_EZ, None, _ZERO)), '[Walker88]'),
      # Patellofemoral joint at the knee centre, driven by knee_angle_*_beta.
      JointSpec(f'patellofemoral_{s}', 'CustomJoint', f'femur_{s}', f'patella_{s}',
                _rv(mp(KNEE_IN_FEMUR)), (0.0, 0.0, 0.0), (beta,), (
                    AxisSpec(ma(_EZ), beta, _spline('patella_rotation')),
                    AxisSpec(ma(_EY), None, _ZERO),
                    AxisSpec(ma(_EX), None, _ZERO),
                    AxisSpec(_EX, beta, _spline('patella_anterior')),
                    AxisSpec(_EY, beta, _spline('patella_superior')),
                    AxisSpec(_EZ, None, _ZERO)), '[Walker88] / Yamaguchi & Zajac 1989'),
      JointSpec(f'ankle_{s}', 'PinJoint', f'tibia_{s}', f'talus_{s}', _rv(mp(ANKLE_IN_TIBIA)),
                (0.0, 0.0, 0.0), (f'ankle_angle_{s}',), (_rv(ma(ANKLE_AXIS), 9),), '[Inman76]'),
      JointSpec(f'subtalar_{s}', 'PinJoint', f'talus_{s}', f'calcn_{s}',
                _rv(mp(SUBTALAR_IN_TALUS)), (0.0, 0.0, 0.0), (f'subtalar_angle_{s}',),
                (_rv(ma(SUBTALAR_AXIS), 9),), '[Inman76]'),
      JointSpec(f'mtp_{s}', 'PinJoint', f'calcn_{s}', f'toes_{s}', _rv(mp(MTP_IN_CALCN)),
                (0.0, 0.0, 0.0), (f'mtp_angle_{s}',), (_rv(ma(MTP_AXIS), 9),), '[Isman69]'),
  ]


def _arm_joints(s):
  mp = (lambda p: p) if s == 'r' else mirror_point
  ma = (lambda a: a) if s == 'r' else mirror_axis
  return [
      _ball_like(f'acromial_{s}', 'torso', f'humerus_{s}', mp(SHOULDER_IN_TORSO),
                 [f'arm_flex_{s}', f'arm_add_{s}', f'arm_rot_{s}'], s),
      # Elbow: hinge about the medio-lateral axis through the epicondyle midpoint.
      JointSpec(f'elbow_{s}', 'PinJoint', f'humerus_{s}', f'ulna_{s}', _rv(mp(ELBOW_IN_HUMERUS)),
                (0.0, 0.0, 0.0), (f'elbow_flex_{s}',), (ma(_EZ),), '[Wu05]'),
      JointSpec(f'radioulnar_{s}', 'PinJoint', f'ulna_{s}', f'radius_{s}',
                _rv(mp(RADIOULNAR_IN_ULNA)), (0.0, 0.0, 0.0), (f'pro_sup_{s}',),
                (_rv(ma(PRO_SUP_AXIS), 9),), 'project estimate'),
      JointSpec(f'radius_hand_{s}', 'UniversalJoint', f'radius_{s}', f'hand_{s}',
                _rv(mp(WRIST_IN_RADIUS)), (0.0, 0.0, 0.0), (f'wrist_flex_{s}', f'wrist_dev_{s}'),
                (_rv(ma(WRIST_FLEX_AXIS), 9), _rv(ma(WRIST_DEV_AXIS), 9)), '[Wu05]'),
  ]


# Joint order == Rajagopal2016's joint set order (it fixes the coordinate order).
JOINTS: tuple[JointSpec, ...] = tuple(
    [JointSpec('ground_pelvis', 'CustomJoint', 'ground', 'pelvis', (0.0, 0.0, 0.0),
               (0.0, 0.0, 0.0),
               ('pelvis_tilt', 'pelvis_list', 'pelvis_rotation', 'pelvis_tx', 'pelvis_ty',
                'pelvis_tz'), (
                   AxisSpec(_EZ, 'pelvis_tilt', _LIN), AxisSpec(_EX, 'pelvis_list', _LIN),
                   AxisSpec(_EY, 'pelvis_rotation', _LIN), AxisSpec(_EX, 'pelvis_tx', _LIN),
                   AxisSpec(_EY, 'pelvis_ty', _LIN), AxisSpec(_EZ, 'pelvis_tz', _LIN)))]
    + _leg_joints('r') + _leg_joints('l')
    + [_ball_like('back', 'pelvis', 'torso', LUMBAR_IN_PELVIS,
                  ['lumbar_extension', 'lumbar_bending', 'lumbar_rotation'], 'mid')]
    + _arm_joints('r') + _arm_joints('l'))

# knee_angle_*_beta = knee_angle_* (CoordinateCouplerConstraint, slope 1, offset 0).
COUPLERS = (
    ('patellofemoral_knee_angle_r_con', 'knee_angle_r', 'knee_angle_r_beta'),
    ('patellofemoral_knee_angle_l_con', 'knee_angle_l', 'knee_angle_l_beta'),
)


# =============================================================================
# 7. Marker set
# =============================================================================

@dataclass(frozen=True)
class MarkerSpec:
  name: str
  body: str
  location: tuple[float, float, float]
  landmark: str


# Right-side (and midline) markers: name, body root, location in the body frame,
# landmark. Names follow the Plug-in-Gait / Rajagopal conventions where they exist.
_R_MARKERS = [
    ('ASI', 'pelvis', (0.0, 0.0, INTER_ASIS_DISTANCE / 2), 'anterior superior iliac spine'),
    ('PSI', 'pelvis', (-PELVIS_DEPTH, 0.0, INTER_PSIS_DISTANCE / 2),
     'posterior superior iliac spine'),
    ('HJC', 'femur', (0.0, 0.0, 0.0), 'hip joint centre'),
    # Project estimate: tip of the greater trochanter ~level with the femoral head
    # centre, 75 mm lateral and slightly posterior.
    ('GTR', 'femur', (-0.01, -0.01, 0.075), 'greater trochanter'),
    ('LFC', 'femur', _add(KNEE_IN_FEMUR, (0.0, 0.0, FEMUR_BICONDYLAR / 2)),
     'lateral femoral epicondyle'),
    ('MFC', 'femur', _add(KNEE_IN_FEMUR, (0.0, 0.0, -FEMUR_BICONDYLAR / 2)),
     'medial femoral epicondyle'),
    ('KJC', 'tibia', (0.0, 0.0, 0.0), 'knee joint centre (epicondyle midpoint)'),
    ('LMAL', 'tibia', _add(ANKLE_IN_TIBIA, _mul(BIMALLEOLAR / 2, ANKLE_AXIS)), 'lateral malleolus'),
    ('MMAL', 'tibia', _sub(ANKLE_IN_TIBIA, _mul(BIMALLEOLAR / 2, ANKLE_AXIS)), 'medial malleolus'),
    ('AJC', 'talus', (0.0, 0.0, 0.0), 'ankle joint centre (malleoli midpoint)'),
    ('CAL', 'calcn', _foot_point_in_calcn((_HEEL_X, _FLOOR + 0.030, 0.0)),
     'heel: posterior calcaneus'),
    ('TOE', 'calcn', _foot_point_in_calcn((_MT1_X - 0.003, _FLOOR + 0.035, -0.005)),
     'toe: dorsum of the 2nd metatarsal head'),
    ('MT1', 'calcn', _foot_point_in_calcn(_add(_MT1_CENTRE, (0.0, 0.0, -0.015))),
     '1st metatarsal head, medial aspect'),
    ('MT5', 'calcn', _foot_point_in_calcn(_add(_MT5_CENTRE, (0.0, 0.0, 0.015))),
     '5th metatarsal head, lateral aspect'),
    ('HLX', 'toes', _foot_point_in_toes((_TOE_TIP_X, _FLOOR + 0.015, -0.020)),
     'tip of the hallux (big toe)'),
    ('ACR', 'torso', ACROMION_IN_TORSO, 'acromion (lateral tip)'),
    ('SJC', 'humerus', (0.0, 0.0, 0.0), 'shoulder (glenohumeral) joint centre'),
    ('LEL', 'humerus', _add(ELBOW_IN_HUMERUS, (0.0, 0.0, HUMERUS_BIEPICONDYLAR / 2)),
     'lateral humeral epicondyle'),
    ('MEL', 'humerus', _add(ELBOW_IN_HUMERUS, (0.0, 0.0, -HUMERUS_BIEPICONDYLAR / 2)),
     'medial humeral epicondyle'),
    ('EJC', 'humerus', ELBOW_IN_HUMERUS, 'elbow joint centre (epicondyle midpoint)'),
    ('WRB', 'ulna', ULNAR_STYLOID_IN_ULNA, 'ulnar styloid process'),
    ('WRA', 'radius', _sub(RADIAL_STYLOID_IN_ULNA, RADIOULNAR_IN_ULNA), 'radial styloid process'),
    ('WJC', 'radius', WRIST_IN_RADIUS, 'wrist joint centre (styloid midpoint)'),
    # Project estimates: metacarpal heads 2 (20 mm radial) and 5 (40 mm ulnar) of
    # the 3rd, on the dorsum (15 mm behind the palm plane in the anatomical pose).
    ('MCP2', 'hand', _add(_add(MCP3_IN_HAND, _mul(0.020, FOREARM_LATERAL)), (-0.015, 0.0, 0.0)),
     '2nd metacarpal head, dorsal'),
    ('MCP5', 'hand', _add(_sub(MCP3_IN_HAND, _mul(0.040, FOREARM_LATERAL)), (-0.015, 0.0, 0.0)),
     '5th metacarpal head, dorsal'),
    ('FHD', 'torso', _head_point(35.0), 'front head (temple)'),
    ('BHD', 'torso', _head_point(145.0), 'back head'),
    ('HEAD', 'torso', _head_point(90.0), 'side of the head above the ear'),
]
_MID_MARKERS = [
    ('C7', 'torso', C7_IN_TORSO, '7th cervical spinous process'),
    ('CLAV', 'torso', SUPR_IN_TORSO, 'jugular (suprasternal) notch'),
    ('STRN', 'torso', XYPH_IN_TORSO, 'xiphoid process'),
    ('T10', 'torso', T10_IN_TORSO, '10th thoracic spinous process'),
    ('FHEAD', 'torso', _head_point(0.0), 'head front: glabella'),
    ('BHEAD', 'torso', _head_point(180.0), 'head back: opisthocranion'),
    ('HEAD_TOP', 'torso', VERTEX_IN_TORSO, 'vertex (top of the head)'),
]


def _markers():
  out = []
  for side, prefix in (('r', 'R'), ('l', 'L')):
    for name, root, loc, landmark in _R_MARKERS:
      body = root if root in ('pelvis', 'torso') else f'{root}_{side}'
      p = loc if side == 'r' else mirror_point(loc)
      out.append(MarkerSpec(prefix + name, body, _rv(p),
                            f'{"right" if side == "r" else "left"} {landmark}'))
  for name, body, loc, landmark in _MID_MARKERS:
    out.append(MarkerSpec(name, body, _rv(loc), landmark))
  return tuple(out)


MARKERS: tuple[MarkerSpec, ...] = _markers()

# Names of the model objects, for consumers and tests.
BODY_NAMES = tuple(b.name for b in BODIES)
JOINT_NAMES = tuple(j.name for j in JOINTS)
COORDINATE_NAMES = tuple(c.name for c in COORDINATES)
MARKER_NAMES = tuple(m.name for m in MARKERS)

MODEL_NAME = 'banet_fullbody'
MODEL_CREDITS = ('banet-jax project: full-body model generated by '
                 'banet_jax/skeleton/models/build_fullbody.py from fullbody_table.py; '
                 'topology and coordinate names of the Rajagopal et al. (2016) family.')
MODEL_PUBLICATIONS = ('Anthropometry: de Leva 1996 J Biomech 29:1223; Bell et al. 1990 '
                      'J Biomech 23:617; Winter 2009. Knee: Walker et al. 1988 J Biomech '
                      '21:965; Yamaguchi & Zajac 1989; Delp et al. 1990; Rajagopal et al. '
                      '2016 IEEE TBME 63:2068. Ankle/foot: Inman 1976. Ranges: AAOS 1965.')
