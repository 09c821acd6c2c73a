"""ODAH alignment: virtual markers -> subject-scaled OpenSim model -> coordinates.

* `marker_setup`: IK marker weights and the ScaleTool measurement set of the project model.
* `opensim_scaling.scale_model`: OpenSim ScaleTool (measurements + marker placement).
* `opensim_ik.run_ik`: OpenSim inverse kinematics, the reference.
The fast path, batched Levenberg-Marquardt IK on the JAX skeleton layer, is a skeleton-layer
tool and lives beside it: `banet_jax.skeleton.ik.solve_ik`.

Nothing here imports TensorFlow. Import the submodules directly
(`from odah_tfds.alignment import opensim_ik`).
"""
