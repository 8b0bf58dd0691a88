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
import os.path as osp
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

    problem = load_light('models.checkpoints.original_actionclip').usage_error(
        args.src, args.dst, args.num_frames, '--num-frames',
        [(args.clip_weights, 'read')])
    if problem:
        print(f'error: {problem}', file=sys.stderr)
        return 2

    import models  # noqa: F401  (stack fixes before loading)
    from models.backbones.clip_builder import read_clip_state_dict
    from models.backbones.downloads import CheckpointDownloadError
    from models.backbones.pretrained import fetch_openai_clip
    from models.checkpoints import vificlip
    from models.checkpoints.safe_loading import (CheckpointReadError,
                                                 UnsafeCheckpointError)
    try:
        checkpoint = vificlip.load_vificlip(args.src)
        weights = vificlip.model_state(checkpoint)
        frames = args.num_frames or vificlip.recorded_frames(checkpoint)
        if frames is None:
            raise ValueError('it records no DATA.NUM_FRAMES; give '
                             '--num-frames')
        clip_path = args.clip_weights or fetch_openai_clip(args.clip)
        state, labels = vificlip.convert(
            weights, read_clip_state_dict(clip_path), clip_path)
    except (ValueError, OSError, UnsafeCheckpointError, CheckpointReadError,
            CheckpointDownloadError) as error:
        print(f'error: cannot convert {args.src}: {error}', file=sys.stderr)
        return 2
    ignored = sorted(str(k) for k in checkpoint if k != 'model')
    try:
        meta = vificlip.build_and_save(state, labels, frames,
                                       osp.basename(args.src), ignored,
                                       args.dst)
    except vificlip.ConversionError as error:
        print(f'error: cannot convert {args.src}: {error}', file=sys.stderr)
        return 2
    except OSError as error:
        print(f'error: cannot write {args.dst}: {error}', file=sys.stderr)
        return 1
    print(f'converted {args.src} -> {args.dst}')
    print(f'  clip_arch={meta["clip_arch"]!r}, {frames} frames, mean '
          f'pooling, {len(labels)} class prompts checked against '
          f'{clip_path}')
    if ignored:
        print(f'  ignored (not weights): {", ".join(ignored)}')
    print('  loads strictly into ActionClip: yes')
    return 0


if __name__ == '__main__':
    sys.exit(main())
