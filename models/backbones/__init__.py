"""CLIP: hyperparameters per model name, named weights with their addresses
and hashes, and the builder that joins them."""
