"""Models: detectors (statistical, scikit-learn, PyTorch) over canonical telemetry."""
