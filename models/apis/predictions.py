"""What ``tools/zero_shot.py`` makes of its predictions: the table it
prints per video and its ``--out`` file (JSON or CSV)."""
import os
import os.path as osp
from typing import Dict, List, Tuple

from models.utils.safe_io import write_json_or_csv

#: ``(label, probability)`` per shown label, best first.
Predictions = List[Tuple[str, float]]


def format_table(video: str, predictions: Predictions) -> str:
    """The lines to print of one video's top-k table."""
    lines = [video, '  rank  probability  label']
    lines += [
        f'  {rank:>4}  {prob:>11.4f}  {label}'
        for rank, (label, prob) in enumerate(predictions, 1)
    ]
    return '\n'.join(lines)


def write_results(path: str, results: Dict[str, Predictions],
                  failures: Dict[str, str], info: dict) -> None:
    """Write ``{video: predictions}``, whole or not at all, as JSON
    (``info``, ``results``, ``failures``) or CSV (a row per video and
    rank)."""
    os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
    data = dict(info, results=[
        dict(video=video, predictions=[
            dict(label=label, probability=prob) for label, prob in preds])
        for video, preds in results.items()
    ], failures=[dict(video=v, error=e) for v, e in failures.items()])
    write_json_or_csv(
        path, data, ['video', 'rank', 'label', 'probability'],
        ([video, rank, label, f'{prob:.6f}']
         for video, predictions in results.items()
         for rank, (label, prob) in enumerate(predictions, 1)))
