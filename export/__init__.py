"""Exporting trained models to a bundle: encoder ONNX (tf2onnx), OC-SVM ONNX (skl2onnx), LOF ``.npz``, card."""
