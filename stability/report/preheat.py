"""Imported by the report pool's process server: kernel libraries imported, figure fonts warmed.

Workers and the kernel servers they fork inherit this process's state, so the work of
:func:`stability.report.kernels.preload` is done once per run instead of once per worker.
"""

from .kernels import preload

preload()
