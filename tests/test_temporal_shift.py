import pytest
import torch

from models.recognizers.actionclip import ActionClip
from models.recognizers.temporal_shift import shift_frames

RESNET_ARCH = dict(
    embed_dim=32,
    image_resolution=32,
    vision_layers=(1, 1, 1, 1),
    vision_width=16,
    transformer_width=32,
    transformer_heads=2,
    transformer_layers=1)


def wake_residual_branches(model):
    # CLIP zero-initialises each bottleneck's last norm: at initialisation
    # the residual branches, and the shift in them, have no effect.
    for name, param in model.named_parameters():
        if name.endswith('bn3.weight'):
            torch.nn.init.ones_(param)
    return model


def reference_shift(clips, fold):
    """Frame by frame: (N, T, C, ...) -> shifted copy."""
    out = torch.zeros_like(clips)
    steps = clips.shape[1]
    for t in range(steps):
        if t + 1 < steps:
            out[:, t, :fold] = clips[:, t + 1, :fold]
        if t > 0:
            out[:, t, fold:2 * fold] = clips[:, t - 1, fold:2 * fold]
        out[:, t, 2 * fold:] = clips[:, t, 2 * fold:]
    return out


def test_shift_of_images_matches_frame_by_frame():
    images = torch.randn(2 * 4, 16, 3, 3)  # 2 clips of 4 frames
    shifted = shift_frames(images, num_segs=4, fold_div=8, frame_dim=0)
    expected = reference_shift(images.view(2, 4, 16, 3, 3), 2)
    assert torch.equal(shifted, expected.view_as(images))


def test_shift_of_tokens_matches_frame_by_frame():
    tokens = torch.randn(5, 3 * 4, 16)  # (L, N*T, C), seq-first as CLIP
    shifted = shift_frames(tokens, num_segs=4, fold_div=4, frame_dim=1)
    clips = tokens.view(5, 3, 4, 16).permute(1, 2, 3, 0)  # (N, T, C, L)
    expected = reference_shift(clips, 4).permute(3, 0, 1, 2).reshape(
        5, 12, 16)
    assert torch.equal(shifted, expected)


@pytest.mark.parametrize('arch', ['resnet', 'vit'])
def test_shift_sees_motion_without_new_weights(arch, tiny_arch):
    clip_arch = RESNET_ARCH if arch == 'resnet' else tiny_arch
    torch.manual_seed(0)
    plain = wake_residual_branches(
        ActionClip(clip_arch, 4, num_adapter_layers=1)).eval()
    shifted = ActionClip(
        clip_arch, 4, num_adapter_layers=1, temporal_shift=True).eval()
    assert plain.state_dict().keys() == shifted.state_dict().keys()
    shifted.load_state_dict(plain.state_dict())

    videos = torch.randn(2, 4, 3, 32, 32)
    with torch.no_grad():
        assert not torch.allclose(
            plain.encode_video(videos), shifted.encode_video(videos))
        # single images are not clips: no shift
        images = videos[0]
        assert torch.equal(
            plain.encode_image(images), shifted.encode_image(images))
        # frames mix within a clip, never across the videos of a batch
        together = shifted.encode_video(videos)
        alone = torch.cat([shifted.encode_video(v[None]) for v in videos])
        torch.testing.assert_close(together, alone, atol=1e-5, rtol=1e-5)
        # a frame's features now depend on its neighbours, in order
        frames = videos[0]
        with shifted.temporal_shift.clips_of(4):
            forward = shifted.encode_image(frames)
            backward = shifted.encode_image(frames.flip(0)).flip(0)
        assert not torch.allclose(forward, backward, atol=1e-4)
        torch.testing.assert_close(
            plain.encode_image(frames),
            plain.encode_image(frames.flip(0)).flip(0))


def test_shift_trains():
    model = wake_residual_branches(ActionClip(
        RESNET_ARCH, 4, num_adapter_layers=1, temporal_shift=True,
        labels_or_label_file=['left', 'right']))
    from mmaction.structures import ActionDataSample
    samples = [ActionDataSample().set_gt_label(i % 2) for i in range(4)]
    losses = model(torch.randn(4, 4, 3, 32, 32), samples, mode='loss')
    sum(losses.values()).backward()
    assert model.clip.visual.layer1[0].conv1.weight.grad.abs().sum() > 0
