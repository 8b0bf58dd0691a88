import pytest
import torch
from mmaction.structures import ActionDataSample

from models.recognizers.actionclip import ActionClip
from models.recognizers.freezing import freeze_parameters


def test_frozen_parameters_get_no_gradient_and_stay_put(tiny_arch):
    torch.manual_seed(0)
    model = ActionClip(
        tiny_arch, 4, labels_or_label_file=['a', 'b', 'c'],
        frozen=('clip.token_embedding', 'adapter.frame_position_embeddings'))
    assert model.frozen == [
        'clip.token_embedding.weight',
        'adapter.frame_position_embeddings.weight'
    ]
    before = {k: v.clone() for k, v in model.state_dict().items()}
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    samples = [ActionDataSample().set_gt_label(i) for i in (0, 1, 2)]
    losses = model(torch.randn(3, 4, 3, 32, 32), samples, mode='loss')
    sum(losses.values()).backward()
    optimizer.step()
    after = model.state_dict()
    for name in model.frozen:
        assert getattr(model.get_parameter(name), 'grad') is None
        assert torch.equal(before[name], after[name])
    # everything else trains
    assert not torch.equal(before['clip.visual.proj'],
                           after['clip.visual.proj'])
    # the state dict keeps every key: checkpoints are unchanged
    assert set(before) == set(after)


def test_names_that_match_nothing_are_refused(tiny_arch):
    with pytest.raises(ValueError, match="'clip.token_embeddings'.*clip."):
        ActionClip(tiny_arch, 4, frozen=['clip.token_embeddings'])
    # a prefix must end at a dot: 'clip.visual.con' is not 'clip.visual.conv1'
    with pytest.raises(ValueError, match='clip.visual.con'):
        freeze_parameters(ActionClip(tiny_arch, 4), ['clip.visual.con'])
