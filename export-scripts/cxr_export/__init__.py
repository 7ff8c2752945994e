"""cxr-export: prepares data, trains, merges, quantizes and exports ONNX graphs for cxr-studio (public/models/)."""

__version__ = "0.1.0"
