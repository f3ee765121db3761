"""Offline PRNet work, apart from the frame path: training (``python -m realtime.train``),
its ground truth, AFLW2000-3D evaluation (``python -m realtime.train.evaluate``) and the
import of the official TF weights (``python -m realtime.train.tf_import``)."""
