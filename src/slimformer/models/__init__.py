"""What differs between models: aliases, safe loading, architecture layout, ONNX files."""
