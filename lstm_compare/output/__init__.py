"""The reporting edge: pandas frames and the CSVs (``report``), the terminal summary (``summary``), heatmaps
(``plot``) and accuracy baselines (``baseline``)."""
