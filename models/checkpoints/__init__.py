"""Checkpoints: safe loading under weights_only, what a checkpoint must hold
to be loaded, the config it records."""
