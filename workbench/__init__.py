"""Workbench: data versions, experiments, models, GPUs and deploys inside JupyterLab.

``%load_ext workbench`` in IPython or a notebook registers the ``%wb`` magics
(imported only then, so ``import workbench`` stays cheap).
"""

from typing import Any

__version__ = "0.1.0"


def load_ipython_extension(ipython: Any) -> None:
    from workbench.magics import load_ipython_extension as _load

    _load(ipython)


def unload_ipython_extension(ipython: Any) -> None:
    from workbench.magics import unload_ipython_extension as _unload

    _unload(ipython)
