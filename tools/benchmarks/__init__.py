"""The parts of ``tools/benchmark.py``, one module each: ``predict`` (a),
``encoder`` (b), ``train`` (c), ``decode`` (d), ``loop`` (e, the test loop
of ``mim test``); ``common`` holds the budgets, the clock and the models
measured, ``videos`` the generated videos, ``report`` the markdown
tables."""
