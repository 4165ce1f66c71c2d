"""The comparison's modes: isolated, chained and sequence for a cell (``engine``) and a model (``models``), and the
numerical gradient check (``gradcheck``)."""
