"""tools/light_imports.py: a standard-library module of the plugin read
without the ``models`` package (no torch), its relative imports of other
such modules read the same way, and the package's own modules once
``models`` is imported."""
import os.path as osp
import subprocess
import sys

from conftest import ROOT, offline_env

# In a fresh interpreter, as a tool starts.
LIGHT = '''
import sys
sys.path.insert(0, sys.argv[1])
from light_imports import load_light
evaluation = load_light('models.evaluation.moments_eval')
metrics = load_light('models.evaluation.moment_metrics')
cli = load_light('models.apis.cli')
print('same metrics:', evaluation.segment_interval is metrics.segment_interval)
print('same module:', load_light('models.apis.cli') is cli)
print('names:', metrics.__name__, cli.CliError.__module__)
print('loaded:', sorted(m for m in ('torch', 'numpy', 'mmaction', 'models')
                        if m in sys.modules))
'''


def test_light_modules_and_their_siblings_load_without_torch():
    proc = subprocess.run(
        [sys.executable, '-c', LIGHT, osp.join(ROOT, 'tools')], cwd=ROOT,
        env=offline_env(), capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert 'same metrics: True' in proc.stdout
    assert 'same module: True' in proc.stdout
    assert ('names: _actionclip_light.models.evaluation.moment_metrics '
            '_actionclip_light.models.apis.cli') in proc.stdout
    assert 'loaded: []' in proc.stdout, proc.stdout


def test_the_package_modules_once_models_is_imported():
    import light_imports

    import models.evaluation.moments_eval
    assert light_imports.load_light('models.evaluation.moments_eval') is \
        models.evaluation.moments_eval
