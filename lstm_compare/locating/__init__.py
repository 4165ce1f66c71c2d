"""Locating the first divergence of each reference and mode, and saying it plainly (``locate``)."""
