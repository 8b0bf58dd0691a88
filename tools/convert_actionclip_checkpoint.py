"""Convert a checkpoint of the original ActionCLIP code to this project.

The original repository (github.com/sallymmx/ActionCLIP, ``train.py`` and
``utils/saving.py``) saves::

    {'epoch': int,
     'model_state_dict': CLIP's state dict (``visual.*``, ``transformer.*``,
                         ``token_embedding.weight``, ... as OpenAI's CLIP),
     'fusion_model_state_dict': its ``visual_prompt`` fusion model with
                         ``sim_header='Transf'``: ``frame_position_embeddings
                         .weight`` and ``transformer.resblocks.N.*``,
     'optimizer_state_dict': ...}

(``module.`` prefixes dropped). :class:`~models.ActionClip` holds the same
tensors under ``clip.`` and ``adapter.``; of the position table (a row per
text token) only the first T rows are ever read, so the rest are dropped.
CLIP is stored in float32, as in the released checkpoints; the optimizer
state is left out. The result must load strictly into an ``ActionClip`` of
the architecture its shapes describe, and is saved as ``{'state_dict',
'meta'}`` for ``mim test --checkpoint`` and ``init_actionclip(PATH)``. One
difference remains, in the model: the original fusion LayerNorm's eps is
1e-12, this adapter's (as MMAction2's port) 1e-5.

The output is written whole or not at all; an output that is the input or
a folder is refused before any work. Exit status: 0 when converted; 2 with
one line on stderr when the input cannot be converted or the output cannot
be written there; 1 when writing failed (a previous file is left as it
was).

Example:
    python tools/convert_actionclip_checkpoint.py model_best.pt \\
        vit-b-32-8f_converted.pth --num-segs 8
"""
import argparse
import sys
from typing import Optional, Sequence

from light_imports import load_light

# The conversion, read without torch; these names are also this module's.
_original = load_light('models.checkpoints.original_actionclip')
ConversionError = _original.ConversionError
build_and_load = _original.build_and_load
convert = _original.convert


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Convert SRC to DST; returns the exit status (module docstring)."""
    parser = argparse.ArgumentParser(
        description='Convert a checkpoint of the original ActionCLIP '
        'repository (model_state_dict + fusion_model_state_dict) to this '
        "project's layout (state_dict with clip.* and adapter.* keys).")
    parser.add_argument('src', help='original ActionCLIP checkpoint')
    parser.add_argument('dst', help='where to write the converted file')
    parser.add_argument(
        '--num-segs',
        type=int,
        default=8,
        help='frames per view T the model was trained with (default: 8); '
        'the first T rows of the position table are kept')
    args = parser.parse_args(argv)
    return load_light('models.checkpoints.conversion').run_conversion(
        args.src, args.dst,
        lambda: _original.convert_file(args.src, args.num_segs),
        args.num_segs, '--num-segs')


if __name__ == '__main__':
    sys.exit(main())
