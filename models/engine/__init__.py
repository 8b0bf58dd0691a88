"""Training-time behaviour: hooks, checkpoint saving and resuming, one-line
refusals in MMAction2's scripts."""
