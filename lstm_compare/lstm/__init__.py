"""The LSTM vocabulary and problems: the cell described once (``cell``), models built from it (``model``),
framework-free records (``records``) and reproducible problems drawn from a seed (``problem``).  NumPy only."""
