import glob
import os
import warnings

import pytest
import torch
from conftest import ROOT
from mmaction.registry import MODELS
from mmaction.structures import ActionDataSample

from models.recognizers.actionclip import ActionClip

LABELS = ['a square moving left', 'a circle growing', 'a triangle rotating']
TEMPLATES = ['a video of {}', '{}']


@pytest.fixture
def model(tiny_arch):
    torch.manual_seed(0)
    return MODELS.build(
        dict(
            type='ActionClip',
            clip_arch=tiny_arch,
            num_adapter_segs=4,
            num_adapter_layers=2,
            labels_or_label_file=LABELS,
            template=TEMPLATES))


def samples(*labels):
    return [ActionDataSample().set_gt_label(label) for label in labels]


def naive_scores(model, inputs):
    """The public plugin's computation: every prompt, every batch."""
    from models.text.prompts import prompt_tokens
    tokens = prompt_tokens(LABELS, TEMPLATES).flatten(0, 1)
    video = model.encode_video(inputs)
    video = video / video.norm(dim=-1, keepdim=True)
    text = model.clip.encode_text(tokens)
    text = text / text.norm(dim=-1, keepdim=True)
    sim = (100.0 * video @ text.T).view(len(inputs), -1, len(LABELS))
    return sim.softmax(dim=2).mean(dim=1)


def test_predict_matches_naive_computation(model):
    model.eval()
    inputs = torch.randn(2, 4, 3, 32, 32)
    with torch.no_grad():
        out = model(inputs, samples(0, 1), mode='predict')
        expected = naive_scores(model, inputs)
    scores = torch.stack([s.pred_score for s in out])
    torch.testing.assert_close(scores, expected, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(scores.sum(-1), torch.ones(2))
    # pred_label as MMAction2's heads set it (its Inferencer reads it)
    for sample, score in zip(out, scores):
        assert sample.pred_label.shape == (1, )
        assert sample.pred_label.item() == score.argmax().item()


def test_views_are_scored_separately_and_averaged(model):
    model.eval()
    views = torch.randn(2, 3, 4, 3, 32, 32)  # N, V, T, C, H, W
    with torch.no_grad():
        together = model.predict_scores(views.flatten(1, 2))
        apart = torch.stack(
            [model.predict_scores(views[:, v]) for v in range(3)]).mean(0)
    torch.testing.assert_close(together, apart, rtol=1e-5, atol=1e-6)


def test_tensor_mode_returns_video_features(model):
    feats = model(torch.randn(2, 8, 3, 32, 32), mode='tensor')
    assert feats.shape == (4, 64)


def test_loss_is_symmetric_contrastive(model):
    inputs = torch.randn(3, 4, 3, 32, 32)
    data = samples(0, 2, 1)
    torch.manual_seed(3)
    losses = model(inputs, data, mode='loss')
    assert set(losses) == {'loss_v2t', 'loss_t2v'}
    # recompute with the same template draw
    torch.manual_seed(3)
    template_ids = torch.randint(2, (3, ))
    tokens = model.prompt_bank.tokens[template_ids, torch.tensor([0, 2, 1])]
    video = model.encode_video(inputs)
    video = video / video.norm(dim=-1, keepdim=True)
    text = model.clip.encode_text(tokens)
    text = text / text.norm(dim=-1, keepdim=True)
    logits = model.clip.logit_scale.exp() * video @ text.T
    targets = torch.arange(3)
    ce = torch.nn.functional.cross_entropy
    torch.testing.assert_close(losses['loss_v2t'], 0.5 * ce(logits, targets))
    torch.testing.assert_close(losses['loss_t2v'],
                               0.5 * ce(logits.T, targets))
    sum(losses.values()).backward()
    assert model.adapter.frame_position_embeddings.weight.grad is not None
    assert model.clip.token_embedding.weight.grad is not None


def test_training_step_refreshes_text_features(model):
    from mmengine.optim import OptimWrapper
    model.eval()
    inputs = torch.randn(2, 4, 3, 32, 32)
    with torch.no_grad():
        before = model.predict_scores(inputs)
    model.train()
    wrapper = OptimWrapper(torch.optim.SGD(model.parameters(), lr=1.0))
    model.train_step(dict(inputs=list(inputs), data_samples=samples(0, 1)),
                     wrapper)
    model.eval()
    with torch.no_grad():
        after = model.predict_scores(inputs)
        expected = naive_scores(model, inputs)
    assert not torch.allclose(before, after)
    torch.testing.assert_close(after, expected, rtol=1e-5, atol=1e-6)


def test_mean_adapter_and_new_labels(tiny_arch):
    model = ActionClip(tiny_arch, 4, temporal_adapter='mean')
    assert not any(k.startswith('adapter.') for k in model.state_dict())
    with pytest.raises(RuntimeError, match='no labels'):
        model.predict_scores(torch.randn(1, 4, 3, 32, 32))
    model.set_labels(['jumping', 'running'], templates=['The man is {}'])
    assert model.predict_scores(torch.randn(1, 4, 3, 32, 32)).shape == (1, 2)


def test_bad_inputs_are_explained(model):
    with pytest.raises(ValueError, match='not a multiple'):
        model(torch.randn(1, 5, 3, 32, 32), mode='tensor')
    with pytest.raises(ValueError, match='out of range'):
        model(torch.randn(1, 4, 3, 32, 32), samples(7), mode='loss')
    with pytest.raises(RuntimeError, match='Invalid mode'):
        model(torch.randn(1, 4, 3, 32, 32), mode='train')


def test_init_weights_keeps_clip(model):
    before = model.clip.visual.proj.clone()
    model.init_weights()
    assert torch.equal(model.clip.visual.proj, before)


def test_seed_template_argument(tiny_arch, tmp_path):
    """``template`` takes one template, a list or a file."""
    model = ActionClip(
        tiny_arch, 4, labels_or_label_file=['singing', 'dancing'],
        template='The woman is {}')
    assert model.prompt_bank.templates == ['The woman is {}']
    assert ActionClip(tiny_arch, 4, template=TEMPLATES).templates == TEMPLATES
    path = tmp_path / 'templates.txt'
    path.write_text('\n'.join(TEMPLATES) + '\n')
    assert ActionClip(tiny_arch, 4, template=str(path)).templates == TEMPLATES


def test_deprecated_template_alias(tiny_arch):
    """Older configs' templates_or_template_file still works, with a
    DeprecationWarning; set next to template (the seed's snippet on such a
    config), template wins with a warning instead of failing."""
    with pytest.warns(DeprecationWarning, match='set template'):
        model = ActionClip(tiny_arch, 4, templates_or_template_file=TEMPLATES)
    assert model.templates == TEMPLATES
    with pytest.warns(UserWarning, match='templates_or_template_file=.* is '
                      'ignored'):
        model = ActionClip(
            tiny_arch,
            4,
            templates_or_template_file=TEMPLATES,
            template='a video of {}')
    assert model.templates == ['a video of {}']


SHIPPED_CONFIGS = sorted(
    glob.glob(os.path.join(ROOT, 'configs', 'actionclip_*.py')))


@pytest.mark.parametrize('path', SHIPPED_CONFIGS, ids=os.path.basename)
def test_every_shipped_config_takes_a_template(path, tiny_arch, tmp_path):
    """The seed's ``config.model.template = ...`` works on every shipped
    config, as a string, a list or a file; no config uses the old name.
    (A tiny CLIP stands in for the config's: only the templates matter.)"""
    from mmengine.config import Config
    from mmengine.registry import init_default_scope
    cfg = Config.fromfile(path)
    assert 'templates_or_template_file' not in cfg.model
    init_default_scope('mmaction')
    cfg.model.clip_arch = tiny_arch
    cfg.model.pretrained = False
    cfg.model.labels_or_label_file = LABELS
    file = tmp_path / 'templates.txt'
    file.write_text('a clip of {}\n{}\n')
    for template, expected in (('a video of {}', ['a video of {}']),
                               (TEMPLATES, TEMPLATES),
                               (str(file), ['a clip of {}', '{}'])):
        cfg.model.template = template
        with warnings.catch_warnings():
            warnings.simplefilter('error')  # no deprecation, no conflict
            model = MODELS.build(cfg.model)
        assert model.prompt_bank.templates == expected


def test_predict_after_a_fused_optimizer_step_uses_the_new_text(model):
    """A fused AdamW step leaves the weights' version counters as they
    were: predict must still score the text encoder's new weights."""
    from mmengine.optim import OptimWrapper
    inputs = torch.randn(2, 4, 3, 32, 32)
    model.eval()
    with torch.no_grad():
        model.predict_scores(inputs)  # caches the label text features
    model.train()
    wrapper = OptimWrapper(torch.optim.AdamW(model.parameters(), lr=0.05,
                                             fused=True))
    model.train_step(dict(inputs=list(inputs), data_samples=samples(0, 1)),
                     wrapper)
    model.eval()
    with torch.no_grad():
        torch.testing.assert_close(model.predict_scores(inputs),
                                   naive_scores(model, inputs),
                                   rtol=1e-5, atol=1e-6)


def test_same_label_targets_share_probability():
    from models.recognizers.contrastive import build_contrastive_targets
    targets = build_contrastive_targets(torch.tensor([3, 1, 3, 3]),
                                        'same_label')
    expected = torch.tensor([[1 / 3, 0, 1 / 3, 1 / 3], [0, 1, 0, 0],
                             [1 / 3, 0, 1 / 3, 1 / 3],
                             [1 / 3, 0, 1 / 3, 1 / 3]])
    torch.testing.assert_close(targets, expected)
    with pytest.raises(ValueError, match='contrastive_targets'):
        build_contrastive_targets(torch.tensor([1]), 'soft')


def test_same_label_loss_is_label_aware_kl(tiny_arch):
    """Soft cross-entropy differs from KL(target || softmax) by the
    target's entropy only; with distinct labels it is the diagonal loss."""
    torch.manual_seed(0)
    model = ActionClip(tiny_arch, 4, labels_or_label_file=LABELS,
                       contrastive_targets='same_label')
    inputs = torch.randn(3, 4, 3, 32, 32)
    torch.manual_seed(5)
    soft = model(inputs, samples(0, 1, 2), mode='loss')
    model.contrastive_targets = 'diagonal'
    torch.manual_seed(5)
    hard = model(inputs, samples(0, 1, 2), mode='loss')
    torch.testing.assert_close(soft['loss_v2t'], hard['loss_v2t'])
    model.contrastive_targets = 'same_label'
    torch.manual_seed(5)
    shared = model(inputs, samples(1, 1, 2), mode='loss')
    torch.manual_seed(5)
    model.contrastive_targets = 'diagonal'
    plain = model(inputs, samples(1, 1, 2), mode='loss')
    assert not torch.allclose(shared['loss_v2t'], plain['loss_v2t'])


def test_resnet_image_encoder():
    arch = dict(
        embed_dim=64,
        image_resolution=64,
        vision_layers=(1, 1, 1, 1),
        vision_width=16,
        transformer_width=64,
        transformer_heads=2,
        transformer_layers=1)
    model = ActionClip(arch, 4, num_adapter_layers=1,
                       labels_or_label_file=LABELS)
    model.eval()
    with torch.no_grad():
        scores = model.predict_scores(torch.randn(2, 4, 3, 64, 64))
    assert scores.shape == (2, 3)


def test_half_precision_clip_weights(model):
    """convert_clip_to_fp16 stores CLIP's matrices in float16; the adapter
    stays float32 and scores stay close to the float32 ones."""
    model.eval()
    inputs = torch.randn(2, 4, 3, 32, 32)
    with torch.no_grad():
        full = model.predict_scores(inputs)
        assert model.convert_clip_to_fp16() is model
        assert model.clip.dtype == torch.float16
        assert all(p.dtype == torch.float32
                   for p in model.adapter.parameters())
        half = model.predict_scores(inputs)
    assert half.dtype == torch.float32
    torch.testing.assert_close(half, full, atol=2e-2, rtol=0)


def test_test_step_keeps_float32_on_the_cpu(model):
    """to_float32=False converts only on CUDA: CPU testing stays float32."""
    assert not model.to_float32
    data = dict(inputs=[torch.randint(0, 256, (4, 3, 32, 32),
                                      dtype=torch.uint8)],
                data_samples=samples(1))
    out = model.eval().to('cpu').test_step(data)
    assert out[0].pred_score.shape == (len(LABELS), )
    assert model.clip.dtype == torch.float32
    assert model.apply_test_precision() is model
    assert model.clip.dtype == torch.float32


cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason='no CUDA')


@cuda
@pytest.mark.parametrize('to_float32', [False, True])
def test_moving_keeps_the_dtype_and_test_step_sets_it(tiny_arch, to_float32):
    """.to()/.cuda() move without casting; the first CUDA test step stores
    CLIP in float16 unless to_float32, as mim test ran the released
    models."""
    torch.manual_seed(0)
    model = ActionClip(tiny_arch, 4, labels_or_label_file=LABELS,
                       to_float32=to_float32).eval()
    model.cuda()
    assert model.clip.dtype == torch.float32
    model.to('cuda')
    assert model.clip.dtype == torch.float32
    inputs = torch.randint(0, 256, (4, 3, 32, 32), dtype=torch.uint8)
    data = dict(inputs=[inputs], data_samples=samples(2))
    model.test_step(data)
    expected = torch.float32 if to_float32 else torch.float16
    assert model.clip.dtype == expected
    assert all(p.dtype == torch.float32 for p in model.adapter.parameters())
    model.test_step(data)  # converted once
    assert model.clip.dtype == expected
    # the same precision outside the test loop, by the explicit step
    other = ActionClip(tiny_arch, 4, labels_or_label_file=LABELS,
                       to_float32=to_float32).cuda().apply_test_precision()
    assert other.clip.dtype == expected


def test_old_template_key_of_a_recorded_config_loads_quietly(tmp_path):
    """A config written before ``template`` (conftest's tiny one, as
    checkpoints record it) loads through models.apis.loading with its
    templates and no deprecation warning the user could not act on."""
    from conftest import make_tiny_config

    from models.apis.loading import load_model
    config, checkpoint = make_tiny_config(str(tmp_path))
    with open(config) as f:
        assert 'templates_or_template_file=' in f.read()
    with warnings.catch_warnings():
        warnings.filterwarnings(
            'error', 'ActionClip: templates_or_template_file',
            DeprecationWarning)
        loaded = load_model(checkpoint, config=config, labels=LABELS)
        assert loaded.templates == TEMPLATES
        again = load_model(
            checkpoint, config=config, labels=LABELS,
            templates=['a clip of {}'])
    assert again.templates == ['a clip of {}']
    assert again.identity == loaded.identity  # templates aside
