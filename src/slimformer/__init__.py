"""slimformer: make transformer text classifiers fast and small, and prove it with numbers."""

from slimformer.errors import SlimformerError

__version__ = "0.1.0"
__all__ = ["SlimformerError", "__version__"]
