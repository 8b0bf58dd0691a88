"""What users call: a model loaded to score with (init_actionclip), video
scoring and the folder feature cache."""
