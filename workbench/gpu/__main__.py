"""``python -m workbench.gpu ...``: the ``workbench gpu`` commands without the ``workbench`` entry point."""

from workbench.gpu.cli import gpu

gpu(prog_name="python -m workbench.gpu")
