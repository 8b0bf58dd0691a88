"""What ``tools/benchmark.py`` measures: the model's paths (``model_paths``),
the decode rate (``decode_rate``), mmengine's loops (``loops``) on videos
(``videos``), and the report (``report``). Only the benchmark imports it.
"""
