"""flake8-gradmode: a flake8 plugin for PyTorch grad-mode mistakes."""

__version__ = "0.1.0"
