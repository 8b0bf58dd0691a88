"""Reading videos in MMAction2 pipelines: transforms that fall back to
OpenCV and name the file, and the dataset that can leave unreadable videos
out."""
