"""Weights in and engines out, offline: the official TF PRNet imported into a bundle
(``python -m realtime.export.tf_import``) and the int8 onnxruntime model built and
calibrated (``python -m realtime.export.quantize``)."""
