"""tools/benchmark.py: the report's structure (not its timings) from a
--quick run on the CPU, and the naive path it measures against."""
import json
import subprocess
import sys

import torch
from benchmarks.predict import naive_predict
from conftest import ROOT, offline_env


def test_naive_path_is_the_models_prediction(tiny_arch):
    from models.recognizers.actionclip import ActionClip
    torch.manual_seed(0)
    model = ActionClip(tiny_arch, 4, labels_or_label_file=['a', 'b', 'c'],
                       speedups=dict(fast_attention=False)).eval()
    inputs = torch.randn(2, 8, 3, 32, 32)  # two views each
    bank = model.prompt_bank
    with torch.no_grad():
        naive = naive_predict(model, inputs, bank.tokens.flatten(0, 1),
                              bank.num_templates)
        torch.testing.assert_close(
            naive, model.predict_scores(inputs), atol=1e-6, rtol=1e-5)


def test_quick_run_writes_every_part(tmp_path):
    out = tmp_path / 'bench'
    result = subprocess.run(
        [sys.executable, 'tools/benchmark.py', '--quick', '--device', 'cpu',
         '--out-dir', str(out)],
        cwd=ROOT, env=offline_env(), capture_output=True, text=True,
        timeout=300)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[
        -3000:]
    report = json.loads((out / 'benchmark.json').read_text())
    assert report['environment']['quick'] is True
    assert report['environment']['device'] == 'cpu'

    predict = report['predict']
    assert {r['batch'] for r in predict} == {1, 2}
    for batch in (1, 2):
        rows = {r['path']: r for r in predict if r['batch'] == batch}
        assert set(rows) == {'naive fp32', 'cached fp32', 'cached bf16'}
        assert rows['naive fp32']['speedup_vs_naive'] == 1.0
        # the cached float32 path is exact, bf16 close
        assert rows['cached fp32']['max_abs_prob_diff_vs_naive'] < 1e-5
        assert rows['cached bf16']['max_abs_prob_diff_vs_naive'] < 1e-2
        for row in rows.values():
            assert row['videos_per_s'] > 0 and row['iters'] >= 1
    assert [r['precision'] for r in report['text_cache']] == [
        'float32', 'bfloat16'
    ]
    # the compiled row needs --compile
    assert [r['path'] for r in report['encoder']] == [
        'fp32, original', 'fp32, fast', 'bf16, original', 'bf16, fast'
    ]
    assert all(r['videos_per_s'] > 0 for r in report['encoder'])
    train = report['train']
    assert [r['path'] for r in train] == [
        'fp32, original', 'bf16 AMP, fast, fused AdamW'
    ]
    assert all(r['samples_per_s'] > 0 and r['peak_memory_gib'] is None
               for r in train)
    decode = report['decode']
    assert decode['output_shape'] == [8, 3, 224, 224]
    assert decode['videos_per_s_per_worker'] > 0
    assert (decode['width'], decode['height'], decode['fps']) == (340, 256,
                                                                  25)
    (loop, ) = report['test_loop']
    assert loop['videos'] == report['budget']['num_videos']
    assert loop['bound_by'] in ('data loading (decoding)', 'model step')
    shares = [loop[f'{k}_share']
              for k in ('data_wait', 'preprocess', 'forward', 'rest')]
    assert all(0 <= x <= 1 for x in shares)
    assert abs(sum(shares) - 1) < 0.05
    assert 'acc/top1' in loop['metrics']
    assert report['skipped'] and report['part_seconds']['total'] > 0

    markdown = (out / 'benchmark.md').read_text()
    for title in ('## a. Predict', '## b. Video encoder', '## c. Training',
                  '## d. Test pipeline decoding',
                  '## e. Test loop of the K400 test config'):
        assert title in markdown
    assert '| tiny (--quick) | 1 | cached bf16 |' in markdown
