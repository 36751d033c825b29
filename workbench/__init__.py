"""Workbench: data versions, experiments, models, GPUs and deploys inside JupyterLab."""

__version__ = "0.1.0"
