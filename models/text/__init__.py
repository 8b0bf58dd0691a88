"""Text: labels, prompt templates and their tokens; prompt features."""
