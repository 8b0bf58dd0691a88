"""Small helpers: atomic writes, messages about input paths."""
