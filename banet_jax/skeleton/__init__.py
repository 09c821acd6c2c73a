"""A differentiable OpenSim skeleton layer in JAX.

    skel = load_osim('model.osim')          # no opensim import needed
    out = forward_kinematics(skel, q, scales)  # q (..., C), scales (..., B, 3)
    out.markers                              # (..., M, 3) metres, ground frame

A skeleton's identity is the content of its file (`Skeleton.content_hash`): `load_osim`
caches by it, skeletons of equal content are equal, and `models.project_skeleton()` is the
project model. Datasets and checkpoints record `Skeleton.identity()`; readers compare it
with `check_same_model`.

See `kinematics.forward_kinematics` for shapes and `osim_parser` for what is
supported. `ik.solve_ik` is batched inverse kinematics of marker trajectories on this
layer (`from banet_jax.skeleton import ik`; ODAH's labels and the keypoint method use it).
"""

from banet_jax.skeleton.kinematics import FKResult, apply_couplers, forward_kinematics
from banet_jax.skeleton.limits import coordinate_limit_penalty
from banet_jax.skeleton.osim_parser import (SUPPORTED_FUNCTIONS, SUPPORTED_JOINTS,
                                            OsimError, load_osim)
from banet_jax.skeleton.skeleton import ModelMismatchError, Skeleton, check_same_model

__all__ = [
    'FKResult', 'ModelMismatchError', 'OsimError', 'Skeleton', 'SUPPORTED_FUNCTIONS',
    'SUPPORTED_JOINTS', 'apply_couplers', 'check_same_model', 'coordinate_limit_penalty',
    'forward_kinematics', 'load_osim',
]
