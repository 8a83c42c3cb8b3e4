"""The package version (one place: the build and `threadwidget.__version__` read it)."""

__version__ = "0.1.0"
