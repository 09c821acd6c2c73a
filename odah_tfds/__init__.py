"""ODAH: the synthetic two-view dataset BANet trains on.

* `odah_tfds.labels`, `body/`, `motions/`, `alignment/`: subjects, motions and OpenSim
  ground truth (part 1; `python -m odah_tfds.make_subjects`).
* `odah_tfds.render/`: two-view rendering with pyrender (headless EGL).
* `odah_tfds.generate`, `workers`: one subject's examples, made in TF-free worker
  processes (`python -m odah_tfds.workers`).
* `odah_tfds.odah/`: the TFDS builder (`tfds build odah_tfds/odah --config=tiny`).

Only `odah_tfds.odah` imports TensorFlow: TensorFlow and Mesa GL must not share a process,
so nothing else in this package may import it.
"""
