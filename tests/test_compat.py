"""Tests for models/compat/ (fixes for the installed stack): the runtime
layer and the command line (the text rewrites alone:
test_compat_patches.py; the environment itself: test_environment.py).

Everything that imports mmaction, clip or mim runs in a subprocess, so that
the import hooks are installed fresh. The installed packages are used as
their wheels installed them (checked against their RECORD); nothing here
writes to them. The subprocesses load models/compat/ by path, as a package
of its own, so that models/__init__.py plays no part.
"""
import base64
import hashlib
import importlib.util
import json
import os
import os.path as osp
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


def unhook():
    """Take out the venv's startup hook (models/compat/startup.py): the
    stack as its wheels alone make it."""
    sys.meta_path[:] = [f for f in sys.meta_path
                        if not getattr(f, '_actionclip_compat_finder', 0)]


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
def pristine_site():
    """site-packages, where mmaction, clip and mim are as their wheels
    installed them."""
    import importlib.metadata
    for dist in ('mmaction2', 'clip-anytorch', 'openmim'):
        assert compat.changed_files(
            importlib.metadata.distribution(dist)) == [], dist
    return _installed_site()


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
        unhook()
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
        drn=True, vindlu=True, clip=True)
    # Once imported, the modules are left alone.
    assert out['after_import'] == dict(
        drn=False, vindlu=False, clip=False)
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
        ''', [fake], tmp_path)
    out = _json_result(result)
    assert "cannot import name 'packaging' from 'pkg_resources'" in (
        out['before'])
    assert out['parse'] == '2.0' and out['untouched']


def _fake_dist(site, files, changed):
    """A distribution ``fake`` 1.0 in ``site`` whose RECORD lists ``files``
    (name -> bytes) with their sha256; ``changed`` then replaces some."""
    info = site / 'fake-1.0.dist-info'
    info.mkdir(parents=True)
    (info / 'METADATA').write_text(
        'Metadata-Version: 2.1\nName: fake\nVersion: 1.0\n')
    lines = []
    for name, data in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest())
        lines.append(f'{name},sha256={digest.decode().rstrip("=")},'
                     f'{len(data)}')
        (site / name).parent.mkdir(parents=True, exist_ok=True)
        (site / name).write_bytes(data)
    lines.append('fake-1.0.dist-info/RECORD,,')
    (info / 'RECORD').write_text('\n'.join(lines) + '\n')
    for name, data in changed.items():
        if data is None:
            (site / name).unlink()
        else:
            (site / name).write_bytes(data)
    return info


def test_changed_files(tmp_path):
    import importlib.metadata
    info = _fake_dist(
        tmp_path, {
            'fake/__init__.py': b'',
            'fake/a.py': b'x = 1\n',
            'fake/b.py': b'y = 2\n',
            'fake/lib.so': b'\0\1',
        }, {
            'fake/a.py': b'x = 1  # patched\n',
            'fake/b.py': None,
            'fake/lib.so': b'\0\2',
        })
    dist = importlib.metadata.Distribution.at(info)
    assert compat.changed_files(dist) == [
        'fake/a.py', 'fake/b.py', 'fake/lib.so'
    ]
    assert compat.changed_files(dist, ('.py', )) == ['fake/a.py', 'fake/b.py']


def test_check_command(tmp_path):
    """``python models/compat --check``, as ``make install`` runs the
    folder (only the standard library and the folder), names a
    distribution whose files differ, and how to reinstall it."""
    site = tmp_path / 'site'
    _fake_dist(site, {'fake/__init__.py': b''},
               {'fake/__init__.py': b'patched = True\n'})
    result = _python(None, [site], tmp_path, args=[COMPAT_DIR, '--check'])
    assert result.returncode == 1, result.stdout + result.stderr
    assert '[info] decoder: decord2 ' in result.stdout
    assert result.stderr.splitlines() == [
        '[error] fake 1.0: 1 file(s) differ from its wheel: '
        'fake/__init__.py',
        'reinstall them: pip install --force-reinstall --no-deps fake==1.0'
    ]


def test_startup_hook_lets_mmaction_import_before_the_plugin(tmp_path):
    # make install wrote it: MMAction2's register_all_modules() before any
    # import of the plugin (the seed's MMAction2 snippet) works
    from models.compat.startup import HOOK_NAME
    hook = osp.join(_installed_site(), HOOK_NAME)
    assert osp.isfile(hook), 'run make install (models/compat --startup-hook)'
    with open(hook, encoding='utf-8') as f:
        assert COMPAT_DIR in f.read()
    result = _python(
        None, [], tmp_path, ['-c', 'import sys; import mmaction.models; '
                             'print(sorted(m for m in sys.modules if '
                             'm.startswith(("models", "_actionclip"))))'])
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [
        "['_actionclip_compat',", "'_actionclip_compat.patches',",
        "'_actionclip_compat.runtime']"]


def test_startup_hook_does_nothing_without_the_checkout(tmp_path):
    from models.compat.startup import hook_line, install_hook
    site_dir = tmp_path / 'site'
    site_dir.mkdir()
    path = install_hook(str(site_dir))
    assert os.listdir(site_dir) == [osp.basename(path)]
    with open(path, encoding='utf-8') as f:
        assert f.read() == hook_line(COMPAT_DIR)
    code = (f'import site, sys; site.addsitedir({str(site_dir)!r}); '
            "print('_actionclip_compat.runtime' in sys.modules)")
    # -S: only this folder's hook runs, not the venv's
    found = _python(None, [], tmp_path, ['-S', '-c', code])
    assert found.returncode == 0 and not found.stderr, found.stderr
    assert found.stdout.strip() == 'True'
    with open(path, 'w', encoding='utf-8') as f:
        f.write(hook_line(str(tmp_path / 'moved')))
    gone = _python(None, [], tmp_path, ['-S', '-c', code])
    assert gone.returncode == 0 and not gone.stderr, gone.stderr
    assert gone.stdout.strip() == 'False'
