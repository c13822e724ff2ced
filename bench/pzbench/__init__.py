"""Helpers of bench/run.py: servers, load generators, the big-index shortcut, reports."""
