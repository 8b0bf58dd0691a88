"""What ``tools/benchmark.py`` measures: the model's paths
(``model_paths``: predict, the video encoder, the training step, timed
with ``torch.utils.benchmark``), the decode rate per core
(``decode_rate``), mmengine's test and training loops with where their
time goes (``loops``), the videos they read (``videos``) and the report's
tables (``report``).

Not imported by the ``models`` package: only the benchmark loads it.
"""
