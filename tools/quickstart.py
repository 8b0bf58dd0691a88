"""The whole loop on generated videos: data, `mim train`, `mim test`, and
zero-shot recognition of held-out classes through their label text.

Run from the project root (``make quickstart`` does)::

    python tools/quickstart.py [--config CONFIG] [--work-dir DIR]
    # the whole run in a fresh folder, with the wall time of each stage
    python tools/quickstart.py --time --work-dir work_dirs/quickstart_time

Zero-shot top-1 is reported among all labels, the held-out labels, and the
labels of the video's own shape (which differ only in their motion).
"""
import argparse
import glob
import json
import os
import os.path as osp
import re
import shutil
import subprocess
import sys
import time
from typing import Dict, List

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
DEFAULT_CONFIG = 'configs/actionclip_tiny-scratch_1x1x4_synthetic-actions.py'
DATA = 'data/synthetic_actions'
#: Frames of 64x64 to 106x80: the tiny config sees 64x64, and smaller videos
#: decode faster, which the 2-core time budget needs.
SIZE_SCALE = 0.667


def run(cmd: list, log_path: str) -> str:
    """Run ``cmd``, echo its progress live and its output to ``log_path``."""
    print('$ ' + ' '.join(cmd), flush=True)
    env = dict(os.environ)
    env['PYTHONPATH'] = ROOT + os.pathsep + env.get('PYTHONPATH', '')
    env['PYTHONUNBUFFERED'] = '1'  # progress as it happens, not in blocks
    lines = []
    with open(log_path, 'w') as log, subprocess.Popen(
            cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, text=True) as proc:
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
    """The last value of a metric in mmengine's log output."""
    found = re.findall(rf'{re.escape(name)}: ([0-9.]+)', output)
    if not found:
        raise SystemExit(f'No {name} in the output')
    return float(found[-1])


def read_list(path: str) -> List[List[str]]:
    """The non-empty lines of a label map or file list, split."""
    with open(path) as f:
        return [line.split() for line in f if line.strip()]


def parse_args(argv=None) -> argparse.Namespace:
    """The command line (bad values exit with status 2 before any work)."""
    parser = argparse.ArgumentParser(
        description=__doc__.split('\n\n')[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    add = parser.add_argument
    add('--config', default=DEFAULT_CONFIG, help='the config to train')
    add('--work-dir', default='work_dirs/quickstart',
        help='where logs and checkpoints go')
    add('--seed', type=int, default=0, help='seed of the data and training')
    add('--per-class', type=int, default=300, help='training videos per class')
    add('--time', action='store_true',
        help='the benchmark: run everything in --work-dir, which must be '
        'new or empty (the data and the frame cache go there too), then '
        'print the wall time of each stage and the metrics as JSON and '
        'write them to WORK_DIR/timing.json')
    args = parser.parse_args(argv)
    # Checked before the minutes of generating and training begin.
    if args.per_class < 1:
        parser.error(f'--per-class must be >= 1, got {args.per_class}')
    if not osp.isfile(osp.join(ROOT, args.config)):
        parser.error(f'--config {args.config!r}: no such file (paths are '
                     'relative to the project root)')
    work_dir = osp.join(ROOT, args.work_dir)
    if args.time and osp.isdir(work_dir) and os.listdir(work_dir):
        parser.error(f'--time needs a new or empty --work-dir, and '
                     f'{args.work_dir!r} holds files: name another')
    return args


def main(argv=None) -> int:
    """Run the quickstart; returns the exit status."""
    args = parse_args(argv)
    os.chdir(ROOT)
    os.makedirs(args.work_dir, exist_ok=True)
    if not args.time:
        return quickstart(args, DATA)
    # Fresh: new videos, and a frame cache of this run alone (the mim
    # processes inherit the variable), gigabytes that nothing reads after.
    cache = osp.abspath(osp.join(args.work_dir, 'cache'))
    os.environ['XDG_CACHE_HOME'] = cache
    try:
        return quickstart(args, osp.join(args.work_dir, 'data'))
    finally:
        shutil.rmtree(cache, ignore_errors=True)


def quickstart(args: argparse.Namespace, data: str) -> int:
    """Generate, train, test and score zero-shot; with ``--time``, print
    and write the wall time of each stage and the metrics as JSON."""
    start = time.time()
    stages = {}
    mim = [sys.executable, '-m', 'mim']
    data_options = [] if data == DATA else data_overrides(data)

    print('== 1/4 Generating labelled action videos', flush=True)
    # The generator writes the manifest last: a folder without it was not
    # written to the end, and is written again.
    if osp.isfile(osp.join(data, 'manifest.json')):
        print(f'{data} exists; delete it to generate again')
    else:
        generated = subprocess.run([
            sys.executable, 'tools/generate_videos.py', '--out', data,
            '--seed', str(args.seed), '--per-class', str(args.per_class),
            '--size-scale', str(SIZE_SCALE)])
        if generated.returncode:  # the generator said why, in one line
            return generated.returncode
    stages['generate_s'] = time.time() - start

    print('== 2/4 mim train', flush=True)
    clock = time.time()
    run(mim + ['train', 'mmaction', args.config, '--work-dir', args.work_dir,
               '--cfg-options', f'randomness.seed={args.seed}'] + data_options,
        osp.join(args.work_dir, 'train.log'))
    stages['train_s'] = time.time() - clock
    best = sorted(glob.glob(osp.join(args.work_dir, 'best_acc_top1_*.pth')))
    if not best:
        raise SystemExit(f'No best checkpoint in {args.work_dir}')
    checkpoint = best[-1]

    print('== 3/4 mim test on the test split', flush=True)
    clock = time.time()
    out = run(mim + ['test', 'mmaction', args.config, '--checkpoint',
                     checkpoint, '--work-dir', args.work_dir]
              + (['--cfg-options'] + data_options if data_options else []),
              osp.join(args.work_dir, 'test.log'))
    stages['test_s'] = time.time() - clock
    metrics = dict(test_top1=metric(out, 'acc/top1'),
                   test_top5=metric(out, 'acc/top5'),
                   test_mean_class=metric(out, 'acc/mean1'))
    print(f'acc/top1: {metrics["test_top1"]:.4f}', flush=True)

    print('== 4/4 Zero-shot: classes never trained on, named by text',
          flush=True)
    clock = time.time()
    metrics.update(zero_shot(args.config, checkpoint, data))
    stages['zero_shot_s'] = time.time() - clock
    total = time.time() - start
    print(f'Done in {total / 60:.1f} min (generate '
          f'{stages["generate_s"]:.0f} s, train {stages["train_s"]:.0f} s, '
          f'test {stages["test_s"]:.0f} s, zero-shot '
          f'{stages["zero_shot_s"]:.0f} s); test acc/top1: '
          f'{metrics["test_top1"]:.4f}; logs in {args.work_dir}')
    if args.time:
        report = dict(total_s=total, **stages, **metrics,
                      per_class=args.per_class, config=args.config,
                      cpus=os.cpu_count(), loadavg_after=os.getloadavg())
        with open(osp.join(args.work_dir, 'timing.json'), 'w') as f:
            json.dump(report, f, indent=1)
            f.write('\n')
        print(json.dumps(report))
    return 0


def data_overrides(data: str) -> List[str]:
    """``--cfg-options`` that point the config's splits at ``data``."""
    options = [f'model.labels_or_label_file={data}/label_map.txt']
    for split in ('train', 'val', 'test'):
        options += [f'{split}_dataloader.dataset.ann_file='
                    f'{data}/{split}_list_videos.txt',
                    f'{split}_dataloader.dataset.data_prefix.video='
                    f'{data}/videos/{split}']
    return options


def zero_shot(config: str, checkpoint: str, data: str) -> Dict[str, float]:
    """Score every held-out video against every label once; print and
    return its top-1 among all labels, the held-out labels, and the labels
    of its own shape. A subset's top-1 is the best of its labels' scores:
    a label's score follows its similarity to the video alone."""
    sys.path.insert(0, ROOT)
    import mmengine
    from mmaction.apis import inference_recognizer, init_recognizer
    labels = [' '.join(line)
              for line in read_list(osp.join(data, 'label_map_all.txt'))]
    unseen = [' '.join(line)
              for line in read_list(osp.join(data, 'label_map_zeroshot.txt'))]
    cfg = mmengine.Config.fromfile(config)
    cfg.model.labels_or_label_file = labels
    model = init_recognizer(cfg, checkpoint, device='cpu')
    shape = [label.split()[1] for label in labels]  # "a <shape> <motion>"
    sets = dict(all=range(len(labels)),
                held_out=[labels.index(u) for u in unseen])
    right = dict(all=0, held_out=0, same_shape=0)
    per_class = {label: [0, 0] for label in unseen}  # same shape: right, all
    entries = read_list(osp.join(data, 'zeroshot_all_list_videos.txt'))
    examples = []
    for name, label in entries:
        label = int(label)
        scores = inference_recognizer(
            model, osp.join(data, 'videos', 'zeroshot', name)).pred_score
        same = [i for i in sets['all'] if shape[i] == shape[label]]
        best = {key: max(among, key=lambda i: float(scores[i]))
                for key, among in dict(sets, same_shape=same).items()}
        for key in right:
            right[key] += best[key] == label
        per_class[labels[label]][0] += best['same_shape'] == label
        per_class[labels[label]][1] += 1
        if name.endswith('_0000.mp4'):  # one example of each class
            examples.append((name, labels[label], labels[best['same_shape']]))
    count = len(entries)
    shapes = sorted(set(shape[labels.index(u)] for u in unseen))
    result = {f'zero_shot_top1_{key}': n / count for key, n in right.items()}
    print(f'zero-shot top-1 of the {count} videos of {len(unseen)} classes '
          f'never trained on ({", ".join(unseen)}):')
    print(f'  among the labels of the same shape, which differ only in '
          f'the motion ({", ".join(shapes)}: '
          f'{"/".join(str(shape.count(s)) for s in shapes)} labels): '
          f'{result["zero_shot_top1_same_shape"]:.4f} ('
          + ', '.join(f'"{u}" {r}/{n}' for u, (r, n) in per_class.items())
          + ')')
    print(f'  among all {len(labels)} labels: '
          f'{result["zero_shot_top1_all"]:.4f} '
          f'(chance {1 / len(labels):.4f})')
    print(f'  among the {len(unseen)} held-out labels alone (the shape '
          f'alone decides there): {result["zero_shot_top1_held_out"]:.4f}')
    for name, truth, guess in examples:
        print(f'  {name}: true "{truth}", among its shape\'s labels '
              f'"{guess}"')
    return result


if __name__ == '__main__':
    sys.exit(main())
