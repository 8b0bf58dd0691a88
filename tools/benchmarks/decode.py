"""Part d: the test pipeline's decoding throughput in one process."""
import os.path as osp
import time
from typing import Any, Dict

from benchmarks.common import ROOT, TEST_CONFIGS, Budget


def bench_decode(videos: Dict[str, Any], budget: Budget) -> Dict:
    """Part d: the K400 test pipeline in this process (one worker)."""
    from mmengine.config import Config

    from models.apis.preprocess import VideoPipeline
    cfg = Config.fromfile(
        osp.join(ROOT, 'configs', TEST_CONFIGS['ViT-B/32']))
    # The pipeline as the scoring tools run it (Compose in MMAction2's
    # scope, PackActionInputs included).
    pipeline = VideoPipeline(cfg.test_pipeline)
    # The files cycled through: a --video-dir may hold only one.
    files = [
        videos['files'][i % len(videos['files'])]
        for i in range(max(2, budget.decode_videos))
    ]

    def load(path):
        return pipeline(
            dict(filename=path, label=-1, start_index=0, modality='RGB'))

    shape = tuple(load(files[0])['inputs'].shape)  # warm-up
    start = time.perf_counter()
    for path in files[1:]:
        load(path)
    seconds = time.perf_counter() - start
    count = len(files) - 1
    rate = count / seconds
    print(f'  decode: {rate:.1f} videos/s per worker', flush=True)
    return dict(
        pipeline=[t['type'] for t in cfg.test_pipeline],
        output_shape=list(shape),
        videos=count,
        seconds=seconds,
        ms_per_video=1000 * seconds / count,
        videos_per_s_per_worker=rate,
        codec=videos['codec'],
        width=videos['width'],
        height=videos['height'],
        fps=videos['fps'],
        video_seconds=videos['seconds'],
        mean_file_kib=videos['mean_file_kib'])
