"""Numba kernels of fastbp: array code only (no strings, classes or lists).

Everything here takes C-contiguous arrays and scalars (the entry kernels take
them grouped in the named tuples of ``records``), writes into buffers it was
given and returns ``None`` or a scalar. Validation, allocation and the
choice of kernel live in the ``fastbp`` package. The registries
(``activations``, ``losses``, ``optimizers``) describe each function for the
Python layer; ``entries.py`` is the source of the per-network kernels that
``fastbp.specialize`` generates.
"""
from ._stale_cache import drop_stale_kernel_cache

drop_stale_kernel_cache()
