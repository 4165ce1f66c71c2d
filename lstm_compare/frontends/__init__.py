"""The front ends: the command line (``cli``, ``commands``) and the pytest assertion (``assertions``)."""
