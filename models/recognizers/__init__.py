"""The ActionCLIP recognizer and its parts: temporal adapters, the in-network
temporal shift, frozen parameters, the contrastive loss over all ranks."""
