"""CLIP: hyperparameters per model name, named weights with their addresses
and hashes, their download into the caches, and the builder that joins
them."""
