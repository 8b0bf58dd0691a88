"""Tests for models/compat/patches.py: the text rewrites that the runtime
layer compiles (in use: test_compat.py)."""
from models.compat import patches


def test_patch_multimodal_source():
    original = patches.MULTIMODAL_ORIGINAL
    patched = patches.MULTIMODAL_PATCHED
    assert patches.patch_multimodal_source(original) == (patched, True)
    # Whatever the line endings.
    crlf = original.replace('\n', '\r\n')
    assert patches.patch_multimodal_source(crlf) == (patched, True)
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
