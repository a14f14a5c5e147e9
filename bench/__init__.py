"""hdf-bench: tune, stress-test and report HDF for dynamic facial expression recognition."""
__version__ = "0.1.0"
