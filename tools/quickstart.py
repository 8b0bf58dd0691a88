"""The whole loop on generated videos: data, `mim train`, `mim test`, and
zero-shot recognition of held-out classes through their label text.

Run from the project root (``make quickstart`` does)::

    python tools/quickstart.py [--config CONFIG] [--work-dir DIR]
"""
import argparse
import glob
import os
import os.path as osp
import re
import subprocess
import sys
import time

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
DEFAULT_CONFIG = 'configs/actionclip_tiny-scratch_1x1x4_synthetic-actions.py'
DATA = 'data/synthetic_actions'
#: Frames of 64x64 to 106x80: the tiny config sees 64x64, and smaller videos
#: decode faster, which the 2-core time budget needs.
SIZE_SCALE = 0.667


def run(cmd: list, log_path: str) -> str:
    """Run a command, echo its output live and keep a copy in a log file."""
    print('$ ' + ' '.join(cmd), flush=True)
    env = dict(os.environ)
    env['PYTHONPATH'] = ROOT + os.pathsep + env.get('PYTHONPATH', '')
    env['PYTHONUNBUFFERED'] = '1'  # progress as it happens, not in blocks
    lines = []
    with open(log_path, 'w') as log, subprocess.Popen(
            cmd,
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True) as proc:
        for line in proc.stdout:
            log.write(line)
            log.flush()
            lines.append(line)
            # mmengine's progress lines; the rest stays in the log file
            if ' - mmengine - INFO - ' in line and (
                    'Epoch(' in line or 'best checkpoint' in line
                    or 'Checkpoints will be saved' in line):
                print(line.split(' - INFO - ', 1)[1], end='', flush=True)
    if proc.returncode:
        sys.stdout.write(''.join(lines[-40:]))
        raise SystemExit(f'Failed (exit {proc.returncode}): see {log_path}')
    return ''.join(lines)


def metric(output: str, name: str) -> float:
    found = re.findall(rf'{re.escape(name)}: ([0-9.]+)', output)
    if not found:
        raise SystemExit(f'No {name} in the output')
    return float(found[-1])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split('\n')[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument(
        '--config', default=DEFAULT_CONFIG, help='the config to train')
    parser.add_argument(
        '--work-dir',
        default='work_dirs/quickstart',
        help='where logs and checkpoints go')
    parser.add_argument(
        '--seed', type=int, default=0, help='seed of the data and training')
    parser.add_argument(
        '--per-class', type=int, default=300, help='training videos per class')
    args = parser.parse_args(argv)
    # Checked before the minutes of generating and training begin.
    if args.per_class < 1:
        parser.error(f'--per-class must be >= 1, got {args.per_class}')
    if not osp.isfile(osp.join(ROOT, args.config)):
        parser.error(f'--config {args.config!r}: no such file (paths are '
                     'relative to the project root)')
    os.chdir(ROOT)
    start = time.time()
    os.makedirs(args.work_dir, exist_ok=True)
    mim = [sys.executable, '-m', 'mim']

    print('== 1/4 Generating labelled action videos', flush=True)
    if osp.isfile(osp.join(DATA, 'zeroshot_list_videos.txt')):
        print(f'{DATA} exists; delete it to generate again')
    else:
        subprocess.run([
            sys.executable, 'tools/generate_videos.py', '--out', DATA,
            '--seed',
            str(args.seed), '--per-class',
            str(args.per_class), '--size-scale',
            str(SIZE_SCALE)
        ],
                       check=True)

    print('== 2/4 mim train', flush=True)
    run(mim + [
        'train', 'mmaction', args.config, '--work-dir', args.work_dir,
        '--cfg-options', f'randomness.seed={args.seed}'
    ], osp.join(args.work_dir, 'train.log'))
    best = sorted(glob.glob(osp.join(args.work_dir, 'best_acc_top1_*.pth')))
    if not best:
        raise SystemExit(f'No best checkpoint in {args.work_dir}')
    checkpoint = best[-1]

    print('== 3/4 mim test on the held-out test split', flush=True)
    out = run(mim + [
        'test', 'mmaction', args.config, '--checkpoint', checkpoint,
        '--work-dir', args.work_dir
    ], osp.join(args.work_dir, 'test.log'))
    top1 = metric(out, 'acc/top1')
    print(f'acc/top1: {top1:.4f}', flush=True)

    print('== 4/4 Zero-shot: classes never trained on, named by text',
          flush=True)
    with open(osp.join(DATA, 'label_map_zeroshot.txt')) as f:
        unseen = [line.strip() for line in f if line.strip()]
    out = run(mim + [
        'test', 'mmaction', args.config, '--checkpoint', checkpoint,
        '--work-dir', args.work_dir, '--cfg-options',
        f'model.labels_or_label_file={DATA}/label_map_zeroshot.txt',
        f'test_dataloader.dataset.ann_file={DATA}/zeroshot_list_videos.txt',
        f'test_dataloader.dataset.data_prefix.video={DATA}/videos/zeroshot'
    ], osp.join(args.work_dir, 'zeroshot.log'))
    zero_top1 = metric(out, 'acc/top1')
    print(f'zero-shot top-1 over {len(unseen)} unseen classes '
          f'({", ".join(unseen)}): {zero_top1:.4f} '
          f'(chance {1 / len(unseen):.4f})')
    # Harder: the unseen videos against every label, trained ones included.
    with open(osp.join(DATA, 'label_map_all.txt')) as f:
        num_all = sum(1 for line in f if line.strip())
    out = run(mim + [
        'test', 'mmaction', args.config, '--checkpoint', checkpoint,
        '--work-dir', args.work_dir, '--cfg-options',
        f'model.labels_or_label_file={DATA}/label_map_all.txt',
        'test_dataloader.dataset.ann_file='
        f'{DATA}/zeroshot_all_list_videos.txt',
        f'test_dataloader.dataset.data_prefix.video={DATA}/videos/zeroshot'
    ], osp.join(args.work_dir, 'zeroshot_all.log'))
    print(f'zero-shot top-1 of the unseen videos among all {num_all} '
          f'labels: {metric(out, "acc/top1"):.4f} '
          f'(chance {1 / num_all:.4f})')
    _show_examples(args.config, checkpoint, unseen)
    print(f'Done in {(time.time() - start) / 60:.1f} min; test acc/top1: '
          f'{top1:.4f}; logs in {args.work_dir}')
    return 0


def _show_examples(config: str, checkpoint: str, labels: list) -> None:
    """Score a few held-out videos against the unseen label texts."""
    sys.path.insert(0, ROOT)
    import mmengine
    from mmaction.apis import inference_recognizer, init_recognizer
    cfg = mmengine.Config.fromfile(config)
    cfg.model.labels_or_label_file = labels
    model = init_recognizer(cfg, checkpoint, device='cpu')
    with open(osp.join(DATA, 'zeroshot_list_videos.txt')) as f:
        entries = [line.split() for line in f if line.strip()]
    for name, label in entries[::max(1, len(entries) // 3)][:3]:
        scores = inference_recognizer(
            model, osp.join(DATA, 'videos', 'zeroshot', name)).pred_score
        best = scores.argmax().item()
        print(f'  {name}: true "{labels[int(label)]}", predicted '
              f'"{labels[best]}" ({scores[best]:.2f})')


if __name__ == '__main__':
    sys.exit(main())
