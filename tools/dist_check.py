"""Check that W ranks train exactly like one process with the whole batch.

Run it under torchrun, from the project root::

    torchrun --nproc_per_node=2 tools/dist_check.py     # gloo on CPU
    torchrun --nproc_per_node=2 tools/dist_check.py --backend nccl \\
        --config CONFIG --out report.json                  # 2 GPUs

What is checked: ``models/engine/dist_check.py``. Rank 0 prints a JSON
report (and writes it to ``--out``); the exit status is 0 when every check
holds on every rank.
"""
import argparse
import json
import os
import sys

from light_imports import load_light


def parse_args(argv=None) -> argparse.Namespace:
    """Parse and check the command line (bad input exits with status 2)."""
    parser = argparse.ArgumentParser(
        description=__doc__.split('\n')[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    add = parser.add_argument
    add('--backend', default=None,
        help='torch.distributed backend (None: nccl with CUDA, else gloo)')
    add('--config', help='take the model from this config (its labels are '
        'replaced); None: a tiny ViT')
    add('--batch-size', type=int, default=4, help='videos per rank (B)')
    add('--seed', type=int, default=0, help='seed of the data and draws')
    add('--loss-tol', type=float, default=1e-5,
        help='largest absolute loss difference accepted')
    add('--grad-tol', type=float, default=1e-4,
        help='largest gradient difference accepted, relative to its norm')
    add('--out', help='write the JSON report here (rank 0)')
    args = parser.parse_args(argv)
    if args.batch_size < 1:
        parser.error(f'--batch-size must be >= 1, got {args.batch_size}')
    if not (args.loss_tol > 0 and args.grad_tol > 0):
        parser.error('--loss-tol and --grad-tol must be > 0')
    if args.config is not None and not os.path.isfile(args.config):
        parser.error(f'--config {args.config!r}: no such file')
    if int(os.environ.get('WORLD_SIZE', 1)) < 2:
        parser.error('run it on 2 or more processes: torchrun '
                     '--nproc_per_node=2 tools/dist_check.py')
    if args.out is not None and int(os.environ.get('RANK', 0)) == 0:
        safe_io = load_light('models.utils.safe_io')
        try:
            safe_io.check_output_path(args.out, [args.config], what='--out')
        except safe_io.OutputPathError as error:
            parser.error(str(error))
    return args


def main(argv=None) -> int:
    """Run the check on this rank; returns the exit status."""
    args = parse_args(argv)
    import models  # noqa: F401  (stack fixes, registers ActionClip)
    from models.engine.dist_check import run_check
    from models.utils.safe_io import atomic_write
    report = run_check(args.config, args.batch_size, args.seed,
                       args.loss_tol, args.grad_tol, args.backend)
    if int(os.environ['RANK']) == 0:
        text = json.dumps(report, indent=2)
        print(text, flush=True)
        if args.out:
            with atomic_write(args.out, 'w') as f:
                f.write(text + '\n')
    return 0 if report['ok'] else 1


if __name__ == '__main__':
    sys.exit(main())
