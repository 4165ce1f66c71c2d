"""Catalogs of known hand-written-LSTM bugs, each with where it must be found (``catalog``, ``conventions``,
``variants``), and the suite that runs them (``suite``)."""
