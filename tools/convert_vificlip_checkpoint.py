"""Convert a ViFi-CLIP checkpoint to this project's ActionCLIP layout.

ViFi-CLIP (github.com/muzairkhattak/ViFi-CLIP) fine-tunes CLIP and
averages its frame features; the result is an ``ActionClip`` with
``temporal_adapter='mean'`` whose checkpoint records its config (ViFi-CLIP's
ImageNet mean/std, its prompt ``a photo of a {}.``, its frame count, its
test pipeline), so that ``--model OUT``, ``init_actionclip(OUT)`` and
``init_recognizer``/``mim test`` with ``configs/vificlip_*`` load it
strictly. The format and the checks: ``models/checkpoints/vificlip.py``.

ViFi-CLIP keeps no token table: it is copied from OpenAI's CLIP
(``--clip``, downloaded once into ``~/.cache/clip``, or ``--clip-weights``)
and must give exactly the prompt embeddings the checkpoint stores.

Exit status: 0 when converted; 2 with one line on stderr when the input
is not a ViFi-CLIP checkpoint or the output cannot be written there; 1
when writing failed.

Example:
    python tools/convert_vificlip_checkpoint.py vifi_clip_zs_k400.pth \\
        vificlip_k400_32f.pth --clip ViT-B/16
"""
import argparse
import sys
from typing import Optional, Sequence

from light_imports import load_light


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Convert SRC to DST; see the module docstring."""
    parser = argparse.ArgumentParser(
        description='Convert a ViFi-CLIP checkpoint to an ActionCLIP '
        "checkpoint of this project (mean pooling, ViFi-CLIP's prompt and "
        'normalisation recorded).')
    parser.add_argument('src', help='ViFi-CLIP checkpoint (ckpt_epoch_N.pth)')
    parser.add_argument('dst', help='where to write the converted file')
    source = parser.add_mutually_exclusive_group()
    source.add_argument('--clip', default='ViT-B/16',
                        choices=load_light('models.backbones.clip_archs')
                        .CLIP_ARCHS,
                        help='OpenAI CLIP the model was fine-tuned from, '
                        'for its token table (default: ViT-B/16)')
    source.add_argument('--clip-weights', metavar='PATH',
                        help='a local file of those CLIP weights instead')
    parser.add_argument('--num-frames', type=int,
                        help='frames per view (default: DATA.NUM_FRAMES of '
                        'the config the checkpoint holds)')
    args = parser.parse_args(argv)

    return load_light('models.checkpoints.conversion').run_conversion(
        args.src, args.dst,
        lambda: load_light('models.checkpoints.vificlip').convert_file(
            args.src, args.num_frames, args.clip, args.clip_weights),
        args.num_frames, '--num-frames', [(args.clip_weights, 'read')])


if __name__ == '__main__':
    sys.exit(main())
