"""The report of a protocol run: per split, then mean and standard
deviation over the splits, as JSON and as a markdown table.

Standard library only (the tools write it after the run, and tests read
it without torch).
"""
import json
import statistics
from typing import Dict, List, Sequence

#: The metrics reported, as MMAction2's ``AccMetric`` names them.
METRICS = ('acc/top1', 'acc/top5')


def summarize(rows: Sequence[dict]) -> Dict[str, dict]:
    """Mean and standard deviation of each metric over the splits.

    Args:
        rows (list[dict]): One per split, with the :data:`METRICS` (0-1).

    Returns:
        dict: ``{metric: {'mean': m, 'std': s}}``; ``std`` is the
        population standard deviation (0 for one split), as the papers'
        "mean ± std" over three splits.
    """
    summary = {}
    for metric in METRICS:
        values = [row[metric] for row in rows if metric in row]
        if values:
            summary[metric] = dict(mean=statistics.fmean(values),
                                   std=statistics.pstdev(values))
    return summary


def markdown_table(report: dict) -> str:
    """The report as a markdown table, in percent.

    Args:
        report (dict): As written by :func:`write_report`.

    Returns:
        str: The table, one row per split and a ``mean ± std`` row.
    """
    lines: List[str] = [
        f"# {report['protocol']} {report['dataset']}", '',
        f"Model: `{report['model']}`", '',
        '| split | classes | videos tested | top-1 (%) | top-5 (%) |',
        '|---|---|---|---|---|']
    for row in report['splits']:
        lines.append(
            f"| {row['split']} | {row['classes']} | {row['videos_tested']}"
            f" of {row['test_videos']} | {100 * row['acc/top1']:.2f} | "
            f"{100 * row['acc/top5']:.2f} |")
    mean = report['summary']
    cells = [f"{100 * mean[m]['mean']:.2f} ± {100 * mean[m]['std']:.2f}"
             for m in METRICS]
    lines.append(f'| mean ± std | | | {cells[0]} | {cells[1]} |')
    return '\n'.join(lines) + '\n'


def write_report(path_stem: str, report: dict) -> List[str]:
    """Write ``<path_stem>.json`` and ``<path_stem>.md``.

    Args:
        path_stem (str): The files' path without extension.
        report (dict): ``protocol``, ``dataset``, ``model``, ``splits``
            (one dict per split); ``summary`` is added.

    Returns:
        list[str]: The files written.
    """
    report = dict(report, summary=summarize(report['splits']))
    paths = [f'{path_stem}.json', f'{path_stem}.md']
    with open(paths[0], 'w', encoding='utf-8') as f:
        json.dump(report, f, indent=2)
        f.write('\n')
    with open(paths[1], 'w', encoding='utf-8') as f:
        f.write(markdown_table(report))
    return paths
