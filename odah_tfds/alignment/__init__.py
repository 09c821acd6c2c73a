"""ODAH alignment: virtual markers -> subject-scaled OpenSim model -> coordinates.

* `marker_setup`: IK marker weights and the ScaleTool measurement set of the project model.
* `opensim_scaling.scale_model`: OpenSim ScaleTool (measurements + marker placement).
* `opensim_ik.run_ik`: OpenSim inverse kinematics, the reference.
* `jax_ik.solve_ik`: batched Levenberg-Marquardt IK on the JAX skeleton layer, the fast path.

The OpenSim modules import `opensim` lazily and `jax_ik` never does; nothing here imports
TensorFlow. Import the submodules directly (`from odah_tfds.alignment import jax_ik`).
"""
