"""Running a variant: the interface and its registry, PyTorch, ONNX Runtime, the lean
predictor, and timing each in a process of its own.

Nothing here imports torch, transformers or optimum at import time.
"""
