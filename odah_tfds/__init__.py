"""ODAH dataset as a TensorFlow Datasets builder (placeholder).

The builder (two-view renders of AMASS motions with OpenSim ground truth, as used by BANet)
comes in a later issue; this package exists so the layout and packaging are in place.
"""
