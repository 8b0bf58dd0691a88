"""``AccMetric`` that leaves out the videos ``TolerantVideoDataset`` could
not read, and counts them."""
from typing import Dict, List, Sequence

import torch
from mmaction.evaluation import AccMetric
from mmaction.registry import METRICS
from mmengine.logging import MMLogger, print_log

from models.datasets.transforms import VideoReadError
from models.datasets.video_dataset import UNREADABLE_KEY
from models.engine.hooks.label_check import LabelSetError


@METRICS.register_module()
class TolerantAccMetric(AccMetric):
    """``AccMetric`` that leaves out the videos ``TolerantVideoDataset``
    could not read, and reports their number as ``skipped_videos``."""

    def process(self, data_batch, data_samples: Sequence[dict]) -> None:
        """Keep the readable samples' results; record the skipped ones;
        refuse a class of -1 (MMAction2's for a line without a class,
        which would count as wrong)."""
        readable = []
        for sample in data_samples:
            if sample.get(UNREADABLE_KEY, False):
                self.results.append(
                    dict(skipped=sample.get('filename', '<unknown>')))
                continue
            lowest = int(torch.as_tensor(sample['gt_label']).min())
            if lowest < 0:
                raise LabelSetError(
                    f'A test sample has class {lowest} '
                    f"({sample.get('filename', 'unknown video')}): -1 is "
                    'what MMAction2 reads for an annotation line without '
                    'a class; give every line its class index')
            readable.append(sample)
        super().process(data_batch, readable)

    def compute_metrics(self, results: List) -> Dict:
        """AccMetric's metrics over the readable videos of every rank's
        ``results``, plus ``skipped_videos``."""
        skipped = [r['skipped'] for r in results if 'skipped' in r]
        kept = [r for r in results if 'skipped' not in r]
        if skipped:
            print_log(f'{len(skipped)} unreadable video(s) left out of the '
                      f'accuracy: {", ".join(sorted(skipped)[:20])}'
                      f'{" ..." if len(skipped) > 20 else ""}',
                      logger=MMLogger.get_current_instance(), level=30)
        if not kept:
            raise VideoReadError(
                f'None of the {len(skipped)} test videos could be read')
        metrics = super().compute_metrics(kept)
        metrics['skipped_videos'] = len(skipped)
        return metrics
