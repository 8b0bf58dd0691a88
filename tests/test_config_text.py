"""The config a checkpoint records is read as data, never executed."""
import pytest
from conftest import ROOT
from mmengine.config import Config

from models.checkpoints.recorded_config import (ConfigTextError,
                                                parse_config_text,
                                                recorded_config)

TINY = f'{ROOT}/configs/actionclip_tiny-scratch_1x1x4_synthetic-actions.py'


def test_pretty_text_round_trip():
    cfg = Config.fromfile(TINY)
    parsed = parse_config_text(cfg.pretty_text)
    assert parsed.model.to_dict() == cfg.model.to_dict()
    assert parsed.test_pipeline == cfg.test_pipeline
    assert parsed.model.template == ['a video of {}', '{}']
    assert parsed.optim_wrapper.optimizer.betas == (0.9, 0.98)


@pytest.mark.parametrize('code', [
    "import os\nx = 1",
    "x = __import__('os').system('touch {marker}')",
    "x = open('{marker}', 'w')",
    "x = dict(a=print('hi'))",
    "x = [i for i in range(3)]",
    "x = y",
    "x = dict(**{{'a': 1}})",
    "x = 1 + 1",
])
def test_code_is_refused_and_not_run(tmp_path, code):
    marker = tmp_path / 'marker'
    with pytest.raises(ConfigTextError):
        parse_config_text(code.format(marker=marker))
    assert not marker.exists()


def test_recorded_config_names_the_checkpoint():
    assert recorded_config({'state_dict': {}}, 'a.pth') is None
    assert recorded_config({'meta': {'epoch': 1}}, 'a.pth') is None
    cfg = recorded_config({'meta': {'cfg': 'model = dict(type="X", n=-1)'}},
                          'a.pth')
    assert cfg.model == dict(type='X', n=-1)
    with pytest.raises(ConfigTextError, match=r"a.pth \(meta\['cfg'\]\)"):
        recorded_config({'meta': {'cfg': 'import os'}}, 'a.pth')
