import copy
import pickle

import pytest
import torch

from models.acceleration.cuda_graphs import CudaGraphRunner
from models.recognizers.actionclip import ActionClip

LABELS = ['juggling balls', 'riding a unicycle', 'reading a book']
cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason='no CUDA')


def pair(arch, **flags):
    torch.manual_seed(0)
    eager = ActionClip(arch, 4, labels_or_label_file=LABELS, **flags)
    graphed = ActionClip(arch, 4, labels_or_label_file=LABELS,
                         speedups=dict(cuda_graphs=True), **flags)
    graphed.load_state_dict(eager.state_dict())
    return eager.eval(), graphed.eval()


def test_cpu_and_gradient_calls_run_eagerly(tiny_arch):
    eager, graphed = pair(tiny_arch)
    inputs = torch.randn(2, 4, 3, 32, 32)
    with torch.no_grad():
        expected = eager.predict_scores(inputs)
        got = graphed.predict_scores(inputs)
    assert torch.equal(got, expected)
    assert not graphed._graphs.applies(inputs)
    assert not graphed._graphs._graphs  # nothing captured


def test_copies_and_pickles_leave_graphs_behind(tiny_arch):
    _, graphed = pair(tiny_arch)
    runner = graphed._graphs
    runner._graphs['key'] = object()  # stands for a captured graph
    runner._tensors_key = (1, )
    for copied in (copy.deepcopy(graphed)._graphs,
                   pickle.loads(pickle.dumps(runner))):
        assert not copied._graphs and copied._tensors_key is None
    clone = copy.deepcopy(graphed)
    assert clone._graphs.module is clone
    assert clone._graphs.fn.__self__ is clone


@cuda
@pytest.mark.parametrize('dtype', [None, torch.bfloat16, torch.float16])
def test_replays_match_eager_calls(tiny_arch, dtype):
    eager, graphed = pair(tiny_arch, to_float32=True)
    eager.cuda()
    graphed.cuda()
    context = (torch.autocast('cuda', dtype=dtype)
               if dtype else torch.autocast('cuda', enabled=False))
    for batch in (1, 3, 1):
        inputs = torch.randn(batch, 4, 3, 32, 32, device='cuda')
        with torch.no_grad(), context:
            expected = eager.predict_scores(inputs)
            first = graphed.predict_scores(inputs)
            second = graphed.predict_scores(inputs)
        tol = 1e-6 if dtype is None else 1e-3
        torch.testing.assert_close(first, expected, atol=tol, rtol=0)
        assert torch.equal(first, second)
    assert len(graphed._graphs._graphs) == 2  # batch 1 and batch 3


@cuda
def test_weight_updates_moves_and_new_labels_are_seen(tiny_arch):
    eager, graphed = pair(tiny_arch, to_float32=True)
    eager.cuda()
    graphed.cuda()
    inputs = torch.randn(2, 4, 3, 32, 32, device='cuda')

    def check():
        with torch.no_grad():
            torch.testing.assert_close(
                graphed.predict_scores(inputs),
                eager.predict_scores(inputs),
                atol=1e-6,
                rtol=0)

    check()
    with torch.no_grad():  # in place, as an optimizer step
        for p, q in zip(eager.parameters(), graphed.parameters()):
            noise = 0.05 * torch.randn_like(p)
            p.add_(noise)
            q.add_(noise)
    check()
    graphed.cpu().cuda()  # new addresses: graphs are captured again
    check()
    eager.set_labels(LABELS[:2])
    graphed.set_labels(LABELS[:2])
    check()


def test_runner_without_graphs_calls_the_function():
    module = torch.nn.Linear(3, 3)
    runner = CudaGraphRunner(lambda x, w: module(x) * w, module)
    x, w = torch.randn(2, 3), torch.tensor(2.0)
    assert torch.equal(runner(x, w), module(x) * w)


@pytest.mark.parametrize('mode', ['reduce-overhead', 'max-autotune'])
def test_compile_modes_with_graphs_of_their_own_exclude_cuda_graphs(
        tiny_arch, mode):
    with pytest.raises(ValueError, match='cuda_graphs=False'):
        ActionClip(tiny_arch, 4,
                   speedups=dict(compile=dict(mode=mode), cuda_graphs=True))
    model = ActionClip(tiny_arch, 4, speedups=dict(compile=dict(mode=mode)))
    assert model._compiled_graphs
    assert not ActionClip(
        tiny_arch, 4, speedups=dict(compile=True))._compiled_graphs


@cuda
def test_compiled_graphs_give_eager_features_that_outlive_replays(tiny_arch):
    torch.manual_seed(0)
    eager = ActionClip(tiny_arch, 4, labels_or_label_file=LABELS,
                       to_float32=True).cuda()
    compiled = ActionClip(tiny_arch, 4, labels_or_label_file=LABELS,
                          to_float32=True,
                          speedups=dict(
                              compile=dict(mode='reduce-overhead'))).cuda()
    compiled.load_state_dict(eager.state_dict())
    inputs = torch.randn(3, 2, 4, 3, 32, 32, device='cuda').unbind(0)
    with torch.no_grad():
        expected = [eager.encode_video(x) for x in inputs]
        got = [compiled.encode_video(x) for x in inputs * 2]
    for a, b in zip(got, expected * 2):  # earlier outputs not overwritten
        assert float((a - b).abs().max()) < 1e-4
    # training: the same loss and gradients, step after step
    from mmaction.structures import ActionDataSample
    samples = [ActionDataSample().set_gt_label(i) for i in (0, 2)]
    for x in inputs:
        losses = []
        for model in (eager, compiled):
            model.train().zero_grad()
            torch.manual_seed(1)  # the same prompt templates
            loss = sum(model(x, samples, mode='loss').values())
            loss.backward()
            losses.append((float(loss), model.clip.visual.proj.grad.clone()))
        assert abs(losses[0][0] - losses[1][0]) < 1e-4
        assert float((losses[0][1] - losses[1][1]).abs().max()) < 1e-3


def test_compile_takes_a_mode_name_as_cfg_options_give_it(tiny_arch):
    from models.acceleration.speedups import compile_options
    assert compile_options(True) == {}
    assert compile_options('reduce-overhead') == dict(mode='reduce-overhead')
    assert compile_options(dict(dynamic=False)) == dict(dynamic=False)
    assert ActionClip(
        tiny_arch, 4,
        speedups=dict(compile='reduce-overhead'))._compiled_graphs
    with pytest.raises(ValueError, match="compile='fast'.*reduce-overhead"):
        ActionClip(tiny_arch, 4, speedups=dict(compile='fast'))
