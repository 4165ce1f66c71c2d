"""Measuring: per-dtype tolerances (``tolerance``), one tensor against its float64 truth (``measure``) with its
fused numba back end (``kernels``), and what a run will cost (``limits``)."""
