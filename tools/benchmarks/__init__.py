"""The parts of ``tools/benchmark.py``, one module each: ``predict`` (a),
``encoder`` (b), ``train`` (c), ``decode`` (d, the test pipeline in one
process), ``decode_rate`` (d, decord's rate per core and the host's bound),
``loader_threads`` (d, ``VideoInit``'s threads in DataLoader workers),
``loop`` (e, the test loop of ``mim test``), ``train_loop`` (the training
loop of ``mim train``); ``common`` holds the budgets, the clock and the
models measured, ``iteration_clock`` where a loop's time goes, ``videos``
the videos, ``report`` the markdown tables."""
