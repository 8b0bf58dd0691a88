"""The report of a protocol run: per split, then mean and standard
deviation over the splits, as JSON and markdown. Standard library only.
"""
import json
import statistics
from pathlib import Path
from typing import Dict, List, Sequence

#: The metrics reported, as MMAction2's ``AccMetric`` names them.
METRICS = ('acc/top1', 'acc/top5')


def _mean_std(values: Sequence[float]) -> dict:
    # Population std (0 for one value), as the papers' "mean ± std".
    return dict(mean=statistics.fmean(values), std=statistics.pstdev(values))


def summarize(protocol: str, rows: Sequence[dict]) -> dict:
    """What ``protocol`` reports over its splits' ``rows`` (with the
    :data:`METRICS`, 0-1): nothing for ``few-shot`` (each shot count is its
    own result); for ``base-to-novel``, ``seeds`` (base, novel and harmonic
    mean top-1 per seed), their ``base``, ``novel``, ``hm`` mean and std
    and ``hm_of_means``; else ``{metric: {'mean', 'std'}}``."""
    if protocol == 'few-shot':
        return {}
    if protocol == 'base-to-novel':
        seeds: Dict[str, dict] = {}
        for row in rows:
            seed, part = row['split'].split('-')
            seeds.setdefault(seed, {})[part] = row['acc/top1']
        for values in seeds.values():
            values['hm'] = statistics.harmonic_mean(
                (values['base'], values['novel']))
        summary = {key: _mean_std([v[key] for v in seeds.values()])
                   for key in ('base', 'novel', 'hm')}
        summary['hm_of_means'] = statistics.harmonic_mean(
            (summary['base']['mean'], summary['novel']['mean']))
        summary['seeds'] = seeds
        return summary
    return {metric: _mean_std([row[metric] for row in rows])
            for metric in METRICS if all(metric in row for row in rows)}


def markdown_table(report: dict) -> str:
    """The report as a markdown table in percent, with ``mean ± std``."""
    models = report['model']
    lines: List[str] = [
        f"# {report['protocol']} {report['dataset']}", '',
        'Model: ' + ', '.join(f'`{m}`' for m in (
            models if isinstance(models, list) else [models])), '',
        '| split | classes | videos tested | top-1 (%) | top-5 (%) |',
        '|---|---|---|---|---|']
    for row in report['splits']:
        lines.append(
            f"| {row['split']} | {row['classes']} | {row['videos_tested']}"
            f" of {row['test_videos']} | {100 * row['acc/top1']:.2f} | "
            f"{100 * row['acc/top5']:.2f} |")
    summary = report['summary']

    def cell(value):
        return f"{100 * value['mean']:.2f} ± {100 * value['std']:.2f}"

    if report['protocol'] == 'base-to-novel':
        lines += ['', '| seed | base top-1 (%) | novel top-1 (%) | HM (%) |',
                  '|---|---|---|---|']
        for seed, v in summary['seeds'].items():
            lines.append(f"| {seed} | {100 * v['base']:.2f} | "
                         f"{100 * v['novel']:.2f} | {100 * v['hm']:.2f} |")
        lines.append(f"| mean ± std | {cell(summary['base'])} | "
                     f"{cell(summary['novel'])} | {cell(summary['hm'])} |")
    elif summary:
        lines.append(f'| mean ± std | | | {cell(summary[METRICS[0]])} | '
                     f'{cell(summary[METRICS[1]])} |')
    return '\n'.join(lines) + '\n'


def write_report(path_stem: str, report: dict) -> List[str]:
    """Write ``<path_stem>.json`` and ``.md`` of ``report``
    (``protocol``, ``dataset``, ``model``, ``splits``) with its
    ``summary``; returns the files' paths."""
    report = dict(report, summary=summarize(report['protocol'],
                                            report['splits']))
    paths = [f'{path_stem}.json', f'{path_stem}.md']
    Path(paths[0]).write_text(json.dumps(report, indent=2) + '\n',
                              encoding='utf-8')
    Path(paths[1]).write_text(markdown_table(report), encoding='utf-8')
    return paths
