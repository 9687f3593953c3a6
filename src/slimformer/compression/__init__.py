"""Compression steps: PyTorch int8, ONNX export / optimization / int8, pruning."""
