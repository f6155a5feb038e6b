"""Numba kernels of fastbp: array code only (no strings, classes or lists).

Everything here takes C-contiguous arrays and scalars, writes into buffers it
was given and returns ``None`` or a scalar. Validation, allocation and the
choice of kernel live in the ``fastbp`` package.
"""
