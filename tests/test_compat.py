"""Tests for models/compat/ (fixes for the installed stack): the runtime
layer, the install-time layer and the command line, which share a copy of
the pristine packages (the text rewrites alone: test_compat_patches.py).

Everything that imports mmaction, clip or mim runs in a subprocess whose
``sys.path`` starts with a copy of the installed packages restored to their
pristine (unpatched) state, so the tests neither depend on nor change the
real environment. The subprocesses load models/compat/ by path, as a
package of its own, so that models/__init__.py plays no part.
"""
import base64
import glob
import hashlib
import importlib.util
import json
import os
import os.path as osp
import shutil
import subprocess
import sys
import textwrap

import pytest

from models import compat

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
COMPAT_DIR = osp.join(ROOT, 'models', 'compat')

PRELUDE = f'''\
import importlib.util
import json
import sys
import warnings


def load_compat():
    """A fresh copy of models/compat/ each time, as after a reload."""
    for name in [n for n in sys.modules if n.startswith('actionclip_compat')]:
        del sys.modules[name]
    spec = importlib.util.spec_from_file_location(
        'actionclip_compat', {COMPAT_DIR!r} + '/__init__.py',
        submodule_search_locations=[{COMPAT_DIR!r}])
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # for the package's relative imports
    spec.loader.exec_module(module)
    return module


def fails(statement):
    try:
        exec(statement, {{}})
    except Exception as error:
        return f'{{type(error).__name__}}: {{error}}'
    return None


class Block:
    """Makes the given top-level modules look uninstalled."""

    def __init__(self, *names):
        self.names = names

    def find_spec(self, name, path=None, target=None):
        if name.split('.')[0] in self.names:
            raise ModuleNotFoundError(f'No module named {{name!r}}',
                                      name=name)


def block(*names):
    sys.meta_path.insert(0, Block(*names))


def build_error(name):
    from mmaction.registry import MODELS
    try:
        MODELS.build(dict(type=name))
    except ImportError as error:
        return str(error)
    return None
'''


def _installed_site() -> str:
    spec = importlib.util.find_spec('mmaction')
    return osp.dirname(list(spec.submodule_search_locations)[0])


def _record_hash(site: str, dist_glob: str, rel_path: str) -> str:
    record = glob.glob(osp.join(site, dist_glob, 'RECORD'))[0]
    with open(record) as f:
        for line in f:
            if line.startswith(rel_path + ','):
                return line.split(',')[1]
    raise KeyError(rel_path)


def _file_hash(path: str) -> str:
    with open(path, 'rb') as f:
        digest = hashlib.sha256(f.read()).digest()
    return 'sha256=' + base64.urlsafe_b64encode(digest).decode().rstrip('=')


def _python(code: str, pythonpath, cwd, args=()):
    """Run Python with exactly ``pythonpath`` in front of site-packages."""
    env = dict(os.environ)
    env['PYTHONPATH'] = os.pathsep.join(str(p) for p in pythonpath)
    env['PYTHONDONTWRITEBYTECODE'] = '1'
    env.pop('ACTIONCLIP_TRUST_CHECKPOINTS', None)
    cmd = [sys.executable, *args] if code is None else [
        sys.executable, '-c', PRELUDE + textwrap.dedent(code)
    ]
    return subprocess.run(
        cmd, cwd=str(cwd), env=env, capture_output=True, text=True,
        timeout=120)


def _json_result(result) -> dict:
    assert result.returncode == 0, result.stdout + result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.fixture(scope='module')
def pristine_site(tmp_path_factory):
    """mmaction, clip and mim as their wheels install them, unpatched."""
    src = _installed_site()
    site = tmp_path_factory.mktemp('pristine') / 'site'
    ignore = shutil.ignore_patterns('__pycache__')
    for name in ('mmaction', 'clip', 'mim'):
        shutil.copytree(osp.join(src, name), site / name, ignore=ignore)
    for pattern in ('mmaction2-*.dist-info', 'clip_anytorch-*.dist-info',
                    'openmim-*.dist-info'):
        for dist in glob.glob(osp.join(src, pattern)):
            shutil.copytree(dist, site / osp.basename(dist))
    # The real environment may already be patched (make install): undo it.
    shutil.rmtree(site / 'mmaction/models/localizers/drn', ignore_errors=True)
    (site / 'mmaction/models/multimodal/__init__.py').write_text(
        compat.MULTIMODAL_ORIGINAL)
    clip_py = site / 'clip' / 'clip.py'
    clip_py.write_text(clip_py.read_text().replace(
        compat.CLIP_REPLACEMENT_LINE, 'from pkg_resources import packaging'))
    customcommand = site / 'mim' / 'click' / 'customcommand.py'
    customcommand.write_text(customcommand.read_text().replace(
        compat.MIM_UNSET_BLOCK, ''))
    for command in ('train', 'test'):
        launcher = site / 'mim' / 'commands' / f'{command}.py'
        launcher.write_text(launcher.read_text().replace(
            compat.MIM_LAUNCH_PATCHED, compat.MIM_LAUNCH_ORIGINAL))
    record = next(site.glob('mmaction2-*.dist-info')) / 'RECORD'
    record.write_text(''.join(
        line for line in record.read_text().splitlines(keepends=True)
        if not line.startswith('mmaction/models/localizers/drn/')))
    # Byte-identical to the wheels' files, as their RECORDs prove.
    for dist_glob, rel in (
        ('mmaction2-*.dist-info', 'mmaction/models/multimodal/__init__.py'),
        ('mmaction2-*.dist-info', 'mmaction/models/localizers/__init__.py'),
        ('clip_anytorch-*.dist-info', 'clip/clip.py'),
        ('openmim-*.dist-info', 'mim/click/customcommand.py'),
        ('openmim-*.dist-info', 'mim/commands/train.py'),
        ('openmim-*.dist-info', 'mim/commands/test.py'),
    ):
        assert _file_hash(str(site / rel)) == _record_hash(
            str(site), dist_glob, rel), rel
    return site


@pytest.fixture
def site(pristine_site, tmp_path):
    """A private, writable copy of the pristine packages."""
    copy = tmp_path / 'site'
    shutil.copytree(pristine_site, copy)
    return copy


@pytest.fixture(scope='module')
def fake_transformers(tmp_path_factory):
    """A transformers "99.0" that breaks VindLU's imports."""
    root = tmp_path_factory.mktemp('fake_transformers')
    (root / 'transformers').mkdir()
    (root / 'transformers' / '__init__.py').write_text(
        textwrap.dedent('''\
        """A transformers release that removed what mmaction2 imports."""
        __version__ = '99.0'


        def __getattr__(name):
            raise ImportError(f'cannot import name {name!r} from '
                              "'transformers' (fake release 99.0)")
        '''))
    dist = root / 'transformers-99.0.dist-info'
    dist.mkdir()
    (dist / 'METADATA').write_text(
        'Metadata-Version: 2.1\nName: transformers\nVersion: 99.0\n')
    return root


def test_pristine_stack_is_broken(pristine_site, fake_transformers,
                                  tmp_path):
    result = _python(
        '''
        block('pkg_resources')  # setuptools >= 82, whatever is installed
        import importlib_metadata
        from mmaction.utils.dependency import WITH_MULTIMODAL
        out = dict(
            transformers=importlib_metadata.distribution(
                'transformers').version,
            with_multimodal=WITH_MULTIMODAL,
            clip=fails('import clip'),
            drn=fails('import mmaction.models'))
        load_compat().fix_drn_import()  # get past DRN to reach VindLU
        out['vindlu'] = fails('import mmaction.models')
        print(json.dumps(out))
        ''', [pristine_site, fake_transformers], tmp_path)
    out = _json_result(result)
    assert out['transformers'] == '99.0' and out['with_multimodal']
    assert "No module named 'pkg_resources'" in out['clip']
    assert "No module named 'mmaction.models.localizers.drn'" in out['drn']
    assert 'transformers' in out['vindlu']


def test_runtime_fixes(pristine_site, fake_transformers, tmp_path):
    result = _python(
        '''
        block('pkg_resources')  # setuptools >= 82, whatever is installed
        compat = load_compat()
        first = compat.apply_runtime_fixes()
        second = compat.apply_runtime_fixes()
        finders = [f for f in sys.meta_path
                   if getattr(f, '_actionclip_compat_finder', False)]
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter('always')
            from mmaction.utils import register_all_modules
            register_all_modules()
            import mmaction.models
        import clip
        from mmaction.models.localizers.drn import drn
        from mmaction.registry import MODELS
        print(json.dumps(dict(
            first=first,
            second=second,
            after_import=compat.apply_runtime_fixes(),
            finders=len(finders),
            drn_origin=drn.__spec__.origin,
            registered=[n for n in ('DRN', 'VindLUVQA', 'VindLURetrievalMC',
                                    'VindLURetrieval')
                        if n in MODELS.module_dict],
            errors={n: build_error(n) for n in ('DRN', 'VindLUVQA',
                                                'VindLURetrieval')},
            vindlu_warning=any('VindLU' in str(w.message) for w in caught),
            parse=str(clip.clip.packaging.version.parse('1.7.1')),
            models=clip.available_models()[:1])))
        ''', [pristine_site, fake_transformers], tmp_path)
    out = _json_result(result)
    assert out['first'] == out['second'] == dict(
        importlib_metadata=False, drn=True, vindlu=True, clip=True,
        dist_without_gpu=True)
    # Once imported, the modules are left alone (mmengine's are patched in
    # place, see tests/test_distributed.py).
    assert out['after_import'] == dict(
        importlib_metadata=False, drn=False, vindlu=False, clip=False,
        dist_without_gpu=True)
    assert out['finders'] == 1
    assert out['drn_origin'] == f'<{compat.MARKER}>'
    assert out['registered'] == [
        'DRN', 'VindLUVQA', 'VindLURetrievalMC', 'VindLURetrieval'
    ]
    assert 'wheel on PyPI does not ship' in out['errors']['DRN']
    assert 'pip install -v -e .' in out['errors']['DRN']
    # One placeholder per name, each naming its own model.
    assert out['errors']['VindLUVQA'].startswith('VindLUVQA requires')
    assert out['errors']['VindLURetrieval'].startswith(
        'VindLURetrieval requires')
    assert out['vindlu_warning']
    assert out['parse'] == '1.7.1' and out['models'] == ['RN50']


def test_runtime_clip_fix_with_old_setuptools(pristine_site, tmp_path):
    """setuptools 70-81: pkg_resources exists but has no ``packaging``."""
    fake = tmp_path / 'fake_setuptools'
    (fake / 'pkg_resources').mkdir(parents=True)
    (fake / 'pkg_resources' / '__init__.py').write_text(
        '"""pkg_resources of setuptools >= 70: no packaging attribute."""\n')
    result = _python(
        '''
        before = fails('import clip')
        load_compat().fix_clip_pkg_resources()
        import clip
        import pkg_resources
        print(json.dumps(dict(
            before=before,
            parse=str(clip.clip.packaging.version.parse('2.0')),
            untouched=not hasattr(pkg_resources, 'packaging'))))
        ''', [pristine_site, fake], tmp_path)
    out = _json_result(result)
    assert "cannot import name 'packaging' from 'pkg_resources'" in (
        out['before'])
    assert out['parse'] == '2.0' and out['untouched']


def test_runtime_importlib_metadata_fix(pristine_site, tmp_path):
    result = _python(
        '''
        block('importlib_metadata')
        before = fails('import mmaction.utils.dependency')
        applied = load_compat().fix_importlib_metadata()
        import importlib.metadata
        import mmaction.utils.dependency as dependency
        print(json.dumps(dict(
            before=before,
            applied=applied,
            again=load_compat().fix_importlib_metadata(),
            stdlib=dependency.distribution is importlib.metadata.distribution,
            numpy=dependency.satisfy_requirement('numpy>=1.0'),
            missing=dependency.satisfy_requirement('not-a-package'))))
        ''', [pristine_site], tmp_path)
    out = _json_result(result)
    assert "No module named 'importlib_metadata'" in out['before']
    assert out['applied'] and not out['again']
    assert out['stdlib'] and out['numpy'] and not out['missing']


def _snapshot(root) -> dict:
    """Content and mtime of every file under ``root``."""
    snap = {}
    for dirpath, _, files in os.walk(root):
        for name in files:
            path = osp.join(dirpath, name)
            with open(path, 'rb') as f:
                snap[path] = (f.read(), os.stat(path).st_mtime_ns)
    return snap


def test_install_patch(site, fake_transformers, tmp_path):
    # -I: isolated, like a clean `make install`, which runs the folder
    script = ['-I', COMPAT_DIR]

    def cli(*args):
        return _python(None, [], tmp_path,
                       args=[*script, *args, '--site-packages',
                             str(site)])

    check = cli('--check')
    assert check.returncode == 1
    assert check.stdout.count('[missing]') == 5, check.stdout

    install = cli('--install')
    assert install.returncode == 0, install.stdout + install.stderr
    assert install.stdout.count('[patched]') == 5, install.stdout
    snapshot = _snapshot(site)

    again = cli('--install')
    assert again.returncode == 0, again.stdout + again.stderr
    assert again.stdout.count('[ok]') == 5, again.stdout
    assert 'nothing changed' in again.stdout
    assert _snapshot(site) == snapshot  # idempotent: not even rewritten
    assert cli('--check').returncode == 0

    drn_dir = site / 'mmaction/models/localizers/drn'
    assert compat.MARKER in (drn_dir / 'drn.py').read_text()
    assert (drn_dir / '__init__.py').is_file()
    # Recorded, so that `pip uninstall mmaction2` removes them.
    for name in ('__init__.py', 'drn.py'):
        rel = f'mmaction/models/localizers/drn/{name}'
        assert _record_hash(str(site), 'mmaction2-*.dist-info',
                            rel) == _file_hash(str(site / rel))
    assert (site / 'mmaction/models/multimodal/__init__.py').read_text() == (
        compat.MULTIMODAL_PATCHED)
    clip_text = (site / 'clip' / 'clip.py').read_text()
    assert 'pkg_resources' not in clip_text.replace(
        compat.CLIP_REPLACEMENT_LINE, '')
    assert compat.MIM_UNSET_BLOCK in (
        site / 'mim/click/customcommand.py').read_text()

    # The patched files import with no runtime fix at all.
    result = _python(
        '''
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter('always')
            from mmaction.utils import register_all_modules
            register_all_modules()
        import clip
        from mmaction.models.localizers.drn import drn
        print(json.dumps(dict(
            drn_file=drn.__file__,
            errors={n: build_error(n) for n in ('DRN', 'VindLURetrievalMC')},
            vindlu_warning=any('VindLU' in str(w.message) for w in caught),
            parse=str(clip.clip.packaging.version.parse('1.7.1')))))
        ''', [site, fake_transformers], tmp_path)
    out = _json_result(result)
    assert out['drn_file'] == str(drn_dir / 'drn.py')
    assert 'pip install -v -e .' in out['errors']['DRN']
    assert out['errors']['VindLURetrievalMC'].startswith(
        'VindLURetrievalMC requires')
    assert out['vindlu_warning'] and out['parse'] == '1.7.1'


def test_install_patch_without_transformers(site, tmp_path):
    """The patched multimodal module still works without transformers."""
    assert all(r.state == 'patched'
               for r in compat.run_install_fixes(str(site)))
    result = _python(
        '''
        import mmaction.models
        print(json.dumps(dict(error=build_error('VindLUVQA'))))
        ''', [site], tmp_path)
    assert _json_result(result)['error'].startswith('VindLUVQA requires')


def test_install_patch_leaves_unknown_files_alone(site):
    multimodal = site / 'mmaction/models/multimodal/__init__.py'
    multimodal.write_text('from .vindlu import VindLUVQA  # changed\n')
    clip_py = site / 'clip' / 'clip.py'
    clip_py.write_text('import packaging.version\n')  # a fixed clip
    customcommand = site / 'mim/click/customcommand.py'
    fixed_mim = customcommand.read_text().replace(
        '        ctx.args = args\n',
        '        ctx.params = {k: None if v is UNSET else v\n'
        '                      for k, v in ctx.params.items()}  # fixed\n'
        '        ctx.args = args\n')
    customcommand.write_text(fixed_mim)
    real_drn = site / 'mmaction/models/localizers/drn'
    real_drn.mkdir()
    (real_drn / 'drn.py').write_text('class DRN:  # the real sources\n'
                                     '    pass\n')
    results = {r.name: r for r in compat.run_install_fixes(str(site))}
    assert results['vindlu-fallback'].state == 'error'
    assert 'unexpected content' in results['vindlu-fallback'].detail
    assert results['clip-packaging'].state == 'ok'
    assert 'not needed' in results['clip-packaging'].detail
    assert results['drn-placeholder'].state == 'ok'
    assert 'real DRN sources' in results['drn-placeholder'].detail
    assert results['mim-click-unset'].state == 'ok'
    assert 'not needed' in results['mim-click-unset'].detail
    assert customcommand.read_text() == fixed_mim
    assert multimodal.read_text().endswith('# changed\n')
    assert not (real_drn / '__init__.py').exists()
    assert compat.main(['--install', '--site-packages', str(site)]) == 1


def test_missing_package_is_an_error(tmp_path):
    results = compat.run_install_fixes(str(tmp_path))
    assert [r.state for r in results] == ['error'] * 3 + ['ok', 'ok']
    assert 'mmaction not found' in results[0].detail
    # mim is optional: the plugin works with mmaction's tools alone.
    assert results[3].detail == 'not needed: openmim is not installed'
    assert results[4].detail == 'not needed: openmim is not installed'


def test_module_entry_point(site, tmp_path):
    """``python -m models.compat`` from the project root. It imports
    models/__init__.py first, and with it mmaction: here the pristine one,
    which the runtime fixes make importable."""
    args = ['-m', 'models.compat']
    check = _python(None, [site, ROOT], ROOT,
                    args=[*args, '--check', '--site-packages', str(site)])
    assert check.returncode == 1, check.stdout + check.stderr
    install = _python(
        None, [site, ROOT], ROOT,
        args=[*args, '--install', '--site-packages', str(site)])
    assert install.returncode == 0, install.stdout + install.stderr
    assert install.stdout.count('[patched]') == 5, install.stdout


# Runs mim's train, test and gridsearch commands as `mim` would, with
# subprocess.check_call (srun, torch.distributed.launch) stubbed out.
MIM_COMMANDS = '''
import importlib
import os
import subprocess

import click.core
from click.testing import CliRunner

import mim

commands = {name: importlib.import_module('mim.commands.' + name)
            for name in ('train', 'test', 'gridsearch')}
calls = []
subprocess.check_call = lambda cmd, **kwargs: calls.append(cmd) or 0
open('cfg.py', 'w').close()
SLURM = ['--launcher', 'slurm', '--gpus', '2', '--gpus-per-node', '2',
         '--partition', 'debug', '--port', '29999']


def invoke(name, *args):
    calls.clear()
    result = CliRunner().invoke(commands[name].cli,
                                ['mmaction', 'cfg.py', *args])
    error = result.exception
    if isinstance(error, SystemExit) and not error.code:
        error = None
    return dict(
        error=None if error is None else f'{type(error).__name__}: {error}',
        cmd=' '.join(map(str, calls[0])) if calls else None)


def gridsearch_values():
    seen = {}
    module = commands['gridsearch']
    real, module.gridsearch = module.gridsearch, (
        lambda **kwargs: seen.update(kwargs) or (True, 'ok'))
    try:
        CliRunner().invoke(module.cli, ['mmaction', 'cfg.py'])
    finally:
        module.gridsearch = real
    return {k: repr(v) for k, v in seen.items()
            if k in ('srun_args', 'search_args', 'partition')}


out = dict(
    mim_file=mim.__file__,
    unset=repr(getattr(click.core, 'UNSET', None)),
    train=invoke('train', *SLURM),
    train_srun_args=invoke('train', *SLURM, '--srun-args', '-J x --time=5'),
    train_no_partition=invoke('train', '--launcher', 'slurm'),
    test=invoke('test', '--checkpoint', 'ckpt.pth', *SLURM),
    test_pytorch=invoke('test', '--checkpoint', 'ckpt.pth', '--launcher',
                        'pytorch'),
    gridsearch=gridsearch_values())
# mim's Python API, which never saw the sentinel: None and a string.
for key, srun_args in (('api_none', None), ('api_str', '--time=5')):
    calls.clear()
    commands['train'].train(
        package='mmaction', config='cfg.py', gpus=2, gpus_per_node=2,
        partition='debug', launcher='slurm', port=29999,
        srun_args=srun_args)
    out[key] = ' '.join(calls[0])
print(json.dumps(out))
'''


def test_install_patch_mim_click_unset(site, tmp_path):
    """``mim train/test --launcher slurm`` without ``--srun-args``."""
    mim_dir = site / 'mim'
    before = _json_result(_python(MIM_COMMANDS, [site], tmp_path))
    assert before['mim_file'] == str(mim_dir / '__init__.py')
    assert before['unset'] == 'Sentinel.UNSET'  # click >= 8.3
    # openmim 0.3.9 under click >= 8.3, unpatched:
    sentinel_error = "AttributeError: 'Sentinel' object has no attribute " \
        "'split'"
    assert before['train']['error'] == sentinel_error
    assert before['test']['error'] == sentinel_error
    assert before['train_no_partition']['error'] == sentinel_error
    assert before['gridsearch']['srun_args'] == 'Sentinel.UNSET'
    assert '--nproc_per_node=Sentinel.UNSET' in (
        before['test_pytorch']['cmd'])

    def cli(*args):
        return _python(None, [], tmp_path,
                       args=['-I', COMPAT_DIR, *args, '--site-packages',
                             str(site)])

    assert '[missing] mim-click-unset' in cli('--check').stdout
    install = cli('--install')
    assert install.returncode == 0, install.stdout + install.stderr
    assert '[patched] mim-click-unset' in install.stdout
    snapshot = _snapshot(mim_dir)
    again = cli('--install')
    assert '[ok] mim-click-unset' in again.stdout, again.stdout
    assert _snapshot(mim_dir) == snapshot  # idempotent: not even rewritten
    check = cli('--check')
    assert check.returncode == 0, check.stdout + check.stderr
    assert '[ok] mim-click-unset' in check.stdout

    after = _json_result(_python(MIM_COMMANDS, [site], tmp_path))
    for key in ('train', 'train_srun_args', 'test'):
        assert after[key]['error'] is None, (key, after[key])
        assert after[key]['cmd'].startswith(
            'srun -p debug --gres=gpu:2 --ntasks=2 --ntasks-per-node=2 ')
        assert 'Sentinel' not in after[key]['cmd']
    assert '--job-name=cfg_train' in after['train']['cmd']
    assert '--kill-on-bad-exit=1 -J x --time=5 ' in (
        after['train_srun_args']['cmd'])
    assert '--job-name' not in after['train_srun_args']['cmd']
    assert '--job-name=cfg_test' in after['test']['cmd']
    assert after['test']['cmd'].endswith(
        'tools/test.py cfg.py ckpt.pth --launcher slurm')
    # Options not given are None again, so mim's own checks work.
    assert after['train_no_partition'] == dict(
        error='AssertionError: If launcher is slurm, gpus-per-node and '
        'partition should not be None', cmd=None)
    assert after['test_pytorch']['cmd'].startswith(
        f'{sys.executable} -m torch.distributed.launch --nproc_per_node=None')
    assert after['gridsearch'] == dict(
        partition='None', srun_args='None', search_args='None')
    assert '--job-name=cfg_train' in after['api_none']
    assert '--time=5 --job-name=cfg_train' in after['api_str']


def test_install_patch_mim_exit_status(site, tmp_path):
    """``mim test`` exits with the script's status, without a traceback."""
    commands = site / 'mim' / 'commands'
    assert [r.state for r in compat.run_install_fixes(str(site))
            if r.name == 'mim-exit-status'] == ['patched']
    for command in ('train', 'test'):
        text = (commands / f'{command}.py').read_text()
        assert text.count(compat.MIM_LAUNCH_PATCHED) == 1
        compile(text, command, 'exec')
    snapshot = _snapshot(commands)
    assert [r.state for r in compat.run_install_fixes(str(site))
            if r.name == 'mim-exit-status'] == ['ok']
    assert _snapshot(commands) == snapshot
    # The patched launch, run with a script that refuses its input.
    result = _python(
        '''
        import importlib
        import subprocess
        mim_test = importlib.import_module('mim.commands.test')
        def failing(cmd, env=None):
            raise subprocess.CalledProcessError(2, cmd)
        mim_test.subprocess.check_call = failing
        open('cfg.py', 'w').close()
        try:
            mim_test.test(package='mmaction', config='cfg.py',
                          checkpoint='c.pth', gpus=None, gpus_per_node=None,
                          cpus_per_task=None, partition=None,
                          launcher='none', port=29500, srun_args=None,
                          yes=True, other_args=())
        except SystemExit as error:
            print(json.dumps(dict(code=error.code)))
        ''', [site], tmp_path)
    assert _json_result(result) == dict(code=2)
