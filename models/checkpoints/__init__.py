"""Checkpoints: safe loading under weights_only, MessageHub state saved as
plain data, what a checkpoint must hold to be loaded, the config it
records."""
