"""What users call: a model loaded to score with (``loading``:
``init_actionclip``, ``load_model``), its video preprocessing on
MMAction2's pieces (``preprocess``), video scoring (``video_scoring``), the
folder feature cache (``feature_cache``) and the options and errors the
scoring command lines share (``cli``)."""
