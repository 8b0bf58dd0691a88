"""Tests for models/compat/patches.py: the text rewrites that the install
step writes and the runtime layer compiles (both: test_compat.py)."""
import importlib.util
import os.path as osp

from models.compat import patches


def _installed_site() -> str:
    spec = importlib.util.find_spec('mmaction')
    return osp.dirname(list(spec.submodule_search_locations)[0])


def test_patch_mim_parse_args_source():
    path = osp.join(_installed_site(), 'mim', 'click', 'customcommand.py')
    with open(path) as f:
        pristine = f.read().replace(patches.MIM_UNSET_BLOCK, '')
    patched, changed = patches.patch_mim_parse_args_source(pristine)
    assert changed and patched.count(patches.MIM_UNSET_BLOCK) == 1
    # The conversion follows the loop over the parameters, as in click's
    # own Command.parse_args, and before the check for extra arguments.
    loop = 'value, args = param.handle_parse_result(ctx, opts, args)\n'
    assert patched.index(loop) + len(loop) == patched.index(
        patches.MIM_UNSET_BLOCK)
    assert patched.index(patches.MIM_UNSET_BLOCK) < patched.index(
        'if args and not ctx.allow_extra_args')
    compile(patched, path, 'exec')
    assert patches.patch_mim_parse_args_source(patched) == (patched, False)
    # Another mim: a parse_args that handles UNSET, or none at all.
    fixed = pristine.replace('return args\n', 'return args  # UNSET\n')
    assert patches.patch_mim_parse_args_source(fixed) == (fixed, False)
    other = 'class CustomCommand(click.Command):\n    pass\n'
    assert patches.patch_mim_parse_args_source(other) == (other, False)


def test_patch_multimodal_source():
    original = patches.MULTIMODAL_ORIGINAL
    patched = patches.MULTIMODAL_PATCHED
    assert patches.patch_multimodal_source(original) == (patched, True)
    # Whatever the line endings, and over an earlier patch of ours.
    crlf = original.replace('\n', '\r\n')
    assert patches.patch_multimodal_source(crlf) == (patched, True)
    earlier = patched.replace('too new', 'newer')
    assert patches.patch_multimodal_source(earlier) == (patched, True)
    assert patches.patch_multimodal_source(patched) == (patched, False)
    # Another mmaction: left as it is.
    other = 'from .vindlu import VindLUVQA  # changed\n'
    assert patches.patch_multimodal_source(other) == (other, False)
    compile(patched, 'multimodal/__init__.py', 'exec')


def test_patch_clip_source():
    source = ('import os\nfrom pkg_resources import packaging\n'
              'import torch\n')
    patched, changed = patches.patch_clip_source(source)
    assert changed and patched == (
        f'import os\n{patches.CLIP_REPLACEMENT_LINE}\nimport torch\n')
    # One line for one, so that clip's tracebacks keep their line numbers.
    assert patched.count('\n') == source.count('\n')
    assert patches.patch_clip_source(patched) == (patched, False)
    fixed = 'import packaging.version\n'
    assert patches.patch_clip_source(fixed) == (fixed, False)
