"""Run one split of a protocol through MMAction2's own test loop.

Each split gets a config file of its own that inherits the model's config
and changes only the classes and the test list, as the project's
``*zeroshot*`` configs do; the run is then what ``mim test mmaction
<that config> --checkpoint <checkpoint>`` does (the same runner, pipeline,
metric and checkpoint loading), in this process.
"""
import os.path as osp
from typing import Dict, Optional


def split_config_text(model_config: str, label_file: str, ann_file: str,
                      video_root: str, workers: Optional[int] = None) -> str:
    """The text of a split's test config.

    Args:
        model_config (str): The model's config file (its model, test
            pipeline, dataloader and metric are kept).
        label_file (str): The split's class texts, one a line.
        ann_file (str): The split's MMAction2 annotation list.
        video_root (str): The folder the list's paths are relative to.
        workers (int, optional): Data loading processes; the config's by
            default.

    Returns:
        str: The config text.
    """
    dataset = dict(ann_file=osp.abspath(ann_file),
                   data_prefix=dict(video=osp.abspath(video_root)))
    loader: Dict[str, object] = dict(dataset=dataset)
    if workers is not None:
        loader.update(num_workers=workers, persistent_workers=workers > 0)
    return (
        '# One split of an evaluation protocol, written by '
        'tools/eval_protocol.py;\n'
        '# mim test mmaction THIS_CONFIG --checkpoint CHECKPOINT runs it '
        'alone.\n'
        f'_base_ = [{osp.abspath(model_config)!r}]\n\n'
        f'model = dict(labels_or_label_file={osp.abspath(label_file)!r})\n'
        f'test_dataloader = {loader!r}\n')


def run_split(config: str, checkpoint: str, work_dir: str) -> dict:
    """Test a checkpoint with a split's config, as ``mim test`` does.

    Args:
        config (str): The split's config file.
        checkpoint (str): The checkpoint file.
        work_dir (str): The runner's work folder (its logs).

    Returns:
        dict: The metrics (``acc/top1``, ``acc/top5``, ...).
    """
    from mmaction.registry import RUNNERS
    from mmengine.config import Config
    from mmengine.runner import Runner

    cfg = Config.fromfile(config)
    cfg.work_dir = work_dir
    cfg.load_from = checkpoint
    # As MMAction2's tools/test.py builds its runner.
    runner = (Runner.from_cfg(cfg) if 'runner_type' not in cfg else
              RUNNERS.build(cfg))
    return dict(runner.test())
