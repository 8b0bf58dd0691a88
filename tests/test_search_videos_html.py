"""tools/search_videos.py --html: the ranking page is drawn from the very
document ``--out`` writes, lists the unreadable videos, and is refused
(before the model loads) where it would overwrite an input."""
import json
import os
import os.path as osp

import pytest
import search_videos
from conftest import make_tiny_config, make_videos

from models.visualization.html_report import ranking_page

QUERY = 'a yellow <square> moving right'


@pytest.fixture(scope='module')
def tiny(tmp_path_factory):
    folder = tmp_path_factory.mktemp('search_html')
    config, checkpoint = make_tiny_config(str(folder))
    return ['--config', config, '--checkpoint', checkpoint]


def test_page_from_the_out_document(tmp_path, tiny, capsys):
    folder = str(tmp_path / 'clips')
    videos = make_videos(folder, 3)
    with open(osp.join(folder, 'broken.mp4'), 'wb') as f:
        f.write(b'not a video' * 50)
    out, page = str(tmp_path / 'r.json'), str(tmp_path / 'pages' / 'p.html')
    status = search_videos.main([
        folder, QUERY, *tiny, '--topk', '2', '--no-progress', '--out', out,
        '--html', page
    ])
    err = capsys.readouterr().err
    assert status == 1, err  # the broken file is listed, the rest ranked
    assert f'Wrote {page}' in err
    with open(out, encoding='utf-8') as f:
        document = json.load(f)
    with open(page, encoding='utf-8') as f:
        text = f.read()
    # Thumbnails are read again from the same files: the same page.
    assert text == ranking_page(document, page)
    assert len(document['results']) == 2
    assert text.count('<tr class="result') == 2
    assert '&lt;square&gt;' in text and '<square>' not in text
    assert 'broken.mp4' in text and '1 video could not be read' in text
    for result in document['results']:
        name = osp.basename(result['video'])
        assert f'data-src="../clips/{name}"' in text
    assert all(osp.isfile(v) for v in videos)


def run_refused(args, monkeypatch, capsys):
    """The tool must stop before loading a model."""

    def load(_):
        raise AssertionError('the model was loaded')

    monkeypatch.setattr(search_videos, 'load_model_from_args', load)
    status = search_videos.main(args)
    err = capsys.readouterr().err.strip()
    assert status == 2 and len(err.splitlines()) == 1, err
    return err


def test_a_page_that_is_an_input_is_refused(tmp_path, monkeypatch, capsys,
                                            tiny):
    folder = str(tmp_path / 'clips')
    (video, ) = make_videos(folder, 1)
    before = open(video, 'rb').read()
    link = str(tmp_path / 'page.html')
    os.symlink(video, link)
    err = run_refused([folder, QUERY, *tiny, '--html', link], monkeypatch,
                      capsys)
    assert '--html' in err and 'is the same file as the input' in err
    assert open(video, 'rb').read() == before

    # A hard link to the --out file of an earlier run.
    out = tmp_path / 'r.json'
    out.write_text('{"earlier": true}')
    page = str(tmp_path / 'r.html')
    os.link(out, page)
    err = run_refused(
        [folder, QUERY, *tiny, '--out', str(out), '--html', page],
        monkeypatch, capsys)
    assert 'through a hard link' in err
    assert out.read_text() == '{"earlier": true}'


def test_a_folder_or_another_format_is_refused(tmp_path, monkeypatch,
                                               capsys, tiny):
    folder = str(tmp_path / 'clips')
    make_videos(folder, 1)
    (tmp_path / 'x.html').mkdir()
    err = run_refused([folder, QUERY, '--html', str(tmp_path / 'x.html')],
                      monkeypatch, capsys)
    assert 'is a folder' in err
    err = run_refused([folder, QUERY, '--html', 'page.pdf'], monkeypatch,
                      capsys)
    assert "--html 'page.pdf': unknown format .pdf" in err


def test_the_middle_thumbnail_of_a_variable_frame_rate_video(
        tmp_path, monkeypatch):
    import odd_videos

    from models.visualization import html_report
    asked = []

    def thumbnails(video, times, *args):
        asked.append(times[0])
        return ['data:'], None

    monkeypatch.setattr(html_report, 'thumbnails', thumbnails)
    # 20 frames every 0.1 s, then 20 every 0.5 s: 11.6 s, where the
    # MP4's 40 frames at its average rate put the middle at 5.4 s
    stamps = [100 * i for i in range(20)] + [2000 + 500 * i
                                             for i in range(20)]
    vfr = odd_videos.write(str(tmp_path / 'vfr.mp4'), 40, pts_ms=stamps)
    html_report._middle_thumbnail(vfr)
    assert asked[-1] == pytest.approx(5.8)  # half of the last frame's end
    cfr = odd_videos.write(str(tmp_path / 'cfr.mp4'), 40, fps=10)
    html_report._middle_thumbnail(cfr)
    assert asked[-1] == pytest.approx(2.0)
