"""Metrics: accuracy that leaves out unreadable videos and counts them."""
