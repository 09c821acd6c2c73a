"""Real captures in: calibrated multi-camera videos -> the clips BANet consumes.

Modules (each states its contract in its docstring):
  calibration  camera calibration readers (Pose2Sim, Qualisys, aniposelib, OpenCap, BANet,
               the project format) -> cameras in the project world (OpenSim ground, metres,
               y up, floor at y = 0), lens distortion
  video        streaming, synchronised decoding of several camera files, frame-rate resampling
  persons      BlazePose (TFLite, from the mediapipe wheel) landmarks and person masks,
               person tracking and selection across calibrated cameras
  demo         the Pose2Sim demo capture, fetched from the package registry
"""
