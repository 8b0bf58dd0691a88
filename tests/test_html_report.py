"""models/visualization/html_report.py: the moments and ranking pages are
one self-contained file each, every user text escaped, the videos'
``src`` pointing at the files from the page; a real headless Chromium
renders both (its screenshot is a real picture; its DOM shows the page's
script ran)."""
import base64
import html.parser
import io
import json
import os
import os.path as osp
import shutil
import signal
import subprocess
import sys
import urllib.parse

import numpy as np
import pytest
from conftest import ROOT, write_video
from PIL import Image

from models.visualization import (html_report, write_moments_page,
                                  write_ranking_page)
from models.visualization.frames import read_frames_at
from models.visualization.html_report import moments_page

EVIL_QUERY = '<script>alert("q")</script> & co'
FPS = 8


class Elements(html.parser.HTMLParser):
    """Start tags with their attributes (unescaped), and the text."""

    def __init__(self, text):
        super().__init__(convert_charrefs=True)
        self.tags, self.text = [], []
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data):
        self.text.append(data)

    def find(self, tag, cls=None):
        return [a for t, a in self.tags if t == tag and (
            cls is None or cls in a.get('class', '').split())]


def segment(start, end, score, peak=None):
    return dict(start_s=start, end_s=end, score=score,
                peak_s=(start + end) / 2 if peak is None else peak)


def video_entry(video, segments, queries, frames=64):
    windows = [[float(s), float(s + 2)] for s in range(frames // FPS - 1)]
    rng = np.random.default_rng(len(video))
    return dict(video=video, duration_s=frames / FPS, fps=float(FPS),
                num_frames=frames, windows=windows,
                scores={q: rng.uniform(0, 1, len(windows)).tolist()
                        for q in queries},
                segments=segments)


@pytest.fixture(scope='module')
def moments(tmp_path_factory):
    """Two videos (one name with quotes, one outside the page's folder),
    a query with markup, a failure, and the page written."""
    root = tmp_path_factory.mktemp('moments')
    (root / 'report').mkdir()
    (root / 'clips').mkdir()
    first = write_video(str(root / 'report' / 'it\'s "first" #1.mp4'),
                        num_frames=64, fps=FPS, seed=1)
    second = write_video(str(root / 'clips' / 'second.mp4'),
                         num_frames=64, fps=FPS, seed=2)
    queries = ['a square moving right', EVIL_QUERY, 'never seen']
    result = dict(
        model=dict(weights='<b>w</b>.pth', built_from='config.py',
                   num_frames=8),
        queries=queries, window_s=2.0, stride_s=1.0, score='softmax',
        threshold=0.5,
        videos=[
            video_entry(first, {queries[0]: [segment(1.0, 3.0, 0.9, 2.5),
                                             segment(5.0, 7.0, 0.7)],
                                queries[1]: [segment(0.0, 2.0, 0.6)],
                                queries[2]: []}, queries),
            video_entry(second, {queries[0]: [segment(2.0, 6.0, 0.8)],
                                 queries[1]: [], queries[2]: []}, queries),
        ],
        failures={str(root / 'bad"<i>.mp4'): 'Cannot decode <i>it</i>'})
    page = str(root / 'report' / 'moments.html')
    write_moments_page(result, page)
    with open(page, encoding='utf-8') as f:
        text = f.read()
    return dict(result=result, page=page, text=text, root=root,
                videos=[first, second])


def test_moments_page_escapes_every_user_text(moments):
    text = moments['text']
    assert '<script>alert' not in text and '<b>w</b>' not in text
    assert '<i>it</i>' not in text and '"first"' not in text
    page = Elements(text)
    # The page's own script, nothing else.
    assert len(page.find('script')) == 1
    assert not page.find('i') and not page.find('b', None) == []
    shown = ''.join(page.text)
    for piece in (EVIL_QUERY, 'Cannot decode <i>it</i>', 'bad"<i>.mp4',
                  '<b>w</b>.pth', 'it\'s "first" #1.mp4'):
        assert piece in shown, piece
    labels = [a['data-label'] for a in page.find('tr', 'seg')]
    assert labels.count(EVIL_QUERY) == 1


def test_moments_page_is_self_contained(moments):
    page = Elements(moments['text'])
    assert 'http://' not in moments['text']
    assert 'https://' not in moments['text']
    images = page.find('img')
    # Per segment start, peak and end; a timeline per video.
    assert len(images) == 3 * 4 + 2
    assert all(a['src'].startswith('data:image/') for a in images)
    assert not page.find('link') and not page.find('iframe')
    assert all('src' not in a for a in page.find('script'))


def test_each_video_plays_from_the_page(moments):
    page = Elements(moments['text'])
    videos = page.find('video')
    assert len(videos) == len(page.find('section', 'video')) == 2
    folder = osp.dirname(moments['page'])
    for element, video in zip(videos, moments['videos']):
        src = element['src']
        assert not src.startswith(('/', 'file:'))
        target = osp.join(folder, urllib.parse.unquote(src))
        assert osp.samefile(target, video)
        assert element['poster'].startswith('data:image/jpeg;base64,')
    assert videos[0]['src'] == 'it%27s%20%22first%22%20%231.mp4'
    assert videos[1]['src'] == '../clips/second.mp4'


def test_rows_seek_to_their_segments(moments):
    page = Elements(moments['text'])
    rows = page.find('tr', 'seg')
    expected = [(1.0, 3.0, '0'), (5.0, 7.0, '0'), (0.0, 2.0, '1'),
                (2.0, 6.0, '0')]
    assert [(float(r['data-start']), float(r['data-end']), r['data-lane'])
            for r in rows] == expected
    assert all(r['tabindex'] == '0' for r in rows)
    shown = ''.join(page.text)
    assert 'never seen: no segment found' in shown
    assert '1 video could not be read' in shown


def closest_frame(uri, video, num_frames):
    """Which frame of the video an embedded JPEG shows: the one it differs
    least from (JPEG changes every pixel a little)."""
    shown = np.asarray(
        Image.open(io.BytesIO(base64.b64decode(uri.split(',', 1)[1]))))
    frames = read_frames_at(video, [i / FPS for i in range(num_frames)],
                            FPS, num_frames, max(shown.shape))
    errors = [np.abs(shown.astype(int) - f).mean() for f in frames]
    return int(np.argmin(errors))


def test_thumbnails_are_the_frames_at_the_segment_times(moments):
    page = Elements(moments['text'])
    first_row = page.find('tr', 'seg')[0]
    assert float(first_row['data-start']) == 1.0
    # The first row's frames: start, peak (2.5 s), end.
    images = [a for a in page.find('img') if a['alt'].startswith('frame')]
    assert [closest_frame(a['src'], moments['videos'][0], 64)
            for a in images[:3]] == [8, 20, 24]


def test_video_url_falls_back_to_file_uri(monkeypatch, tmp_path):
    def no_relative(path, start):
        raise ValueError('path is on mount C:, start on mount D:')

    monkeypatch.setattr(html_report.osp, 'relpath', no_relative)
    url = html_report.video_url(str(tmp_path / 'a b.mp4'),
                                str(tmp_path / 'page.html'))
    assert url == (tmp_path / 'a b.mp4').as_uri()
    assert url.startswith('file:///') and '%20' in url


def test_a_broken_video_result_is_shown_not_fatal(moments, tmp_path):
    result = dict(moments['result'])
    broken = dict(result['videos'][1])
    broken['scores'] = dict(broken['scores'])
    broken['scores']['never seen'] = [float('nan')] * len(broken['windows'])
    missing = dict(result['videos'][0], video=str(tmp_path / 'moved.mp4'))
    result['videos'] = [missing, broken]
    page = Elements(moments_page(result, str(tmp_path / 'p.html')))
    shown = ''.join(page.text)
    assert "query 'never seen': score of window 0 is nan" in shown
    assert 'No frames: Cannot read frames of video' in shown
    assert 'moved.mp4' in shown


def test_pages_are_written_whole_or_not_at_all(moments, tmp_path):
    target = tmp_path / 'page.html'
    target.write_text('old')
    with pytest.raises(ValueError, match='find_moments'):
        write_moments_page({'queries': []}, str(target))
    with pytest.raises(ValueError, match='search_videos'):
        write_ranking_page({'query': 'q'}, str(target))
    assert target.read_text() == 'old'
    with pytest.raises(ValueError, match='.html'):
        write_moments_page(moments['result'], str(tmp_path / 'page.txt'))


@pytest.fixture(scope='module')
def ranking(tmp_path_factory):
    root = tmp_path_factory.mktemp('ranking')
    videos = [write_video(str(root / f'v{i}.mp4'), num_frames=40,
                          size=(80 + 16 * i, 48), fps=FPS, seed=i)
              for i in range(3)]
    gone = str(root / 'gone.mp4')
    doc = dict(query=EVIL_QUERY,
               model=dict(weights='tiny.pth', built_from='tiny_config.py',
                          num_frames=4),
               results=[dict(rank=1, video=videos[2], similarity=0.31),
                        dict(rank=2, video=videos[0], similarity=0.12),
                        dict(rank=3, video=gone, similarity=-0.05),
                        dict(rank=4, video=videos[1], similarity=-0.2)],
               failures=[dict(video=str(root / 'bad.mp4'),
                              error='Cannot decode <video>')])
    page = str(root / 'out' / 'ranking.html')
    os.makedirs(osp.dirname(page))
    write_ranking_page(doc, page)
    with open(page, encoding='utf-8') as f:
        text = f.read()
    return dict(doc=doc, page=page, text=text, videos=videos)


def test_ranking_page(ranking):
    text = ranking['text']
    assert '<script>alert' not in text and '<video>' not in text
    page = Elements(text)
    assert len(page.find('script')) == 1
    rows = page.find('tr', 'result')
    assert [r['data-rank'] for r in rows] == ['1', '2', '3', '4']
    assert [float(r['data-similarity']) for r in rows] == [
        0.31, 0.12, -0.05, -0.2]
    folder = osp.dirname(ranking['page'])
    assert rows[0]['data-src'] == '../v2.mp4'
    assert osp.samefile(
        osp.join(folder, urllib.parse.unquote(rows[0]['data-src'])),
        ranking['videos'][2])
    thumbs = page.find('img')
    assert len(thumbs) == 3 and all(
        a['src'].startswith('data:image/jpeg;base64,') for a in thumbs)
    # The middle frame (20 of 40).
    assert closest_frame(thumbs[0]['src'], ranking['videos'][2], 40) == 20
    shown = ''.join(page.text)
    assert 'Search: ' + EVIL_QUERY in shown
    assert 'no thumbnail: Cannot read frames of video' in shown
    assert 'Cannot decode <video>' in shown and '1 video could not' in shown
    (preview, ) = page.find('video')
    assert 'src' not in preview  # the script sets it


# ---------------------------------------------------------------------------
# In a real browser
# ---------------------------------------------------------------------------

BROWSERS = ('chromium', 'chromium-browser', 'google-chrome')
INSTALL = ('headless Chromium is not installed: apt-get install chromium '
           '(Debian), or chromium-browser (Ubuntu), or Google Chrome; see '
           'docs/reports.md')


def browse(args, profile, timeout=60):
    """Run headless Chromium; the whole process group is ended after it,
    also when it hangs (then the test fails instead of waiting)."""
    browser = next(filter(None, map(shutil.which, BROWSERS)), None)
    if browser is None:
        pytest.skip(INSTALL)
    proc = subprocess.Popen(
        [browser, '--headless', '--disable-gpu', '--no-sandbox',
         '--no-first-run', '--mute-audio', f'--user-data-dir={profile}',
         '--disable-extensions', '--disable-background-networking',
         '--disable-component-update', '--disable-sync', *args],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        start_new_session=True)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        pytest.fail(f'Chromium did not finish in {timeout} s: {args}')
    finally:
        try:
            os.killpg(proc.pid, signal.SIGKILL)  # helpers left behind
        except ProcessLookupError:
            pass
    assert proc.returncode == 0, err.decode()[-2000:]
    return out.decode()


def screenshot(page, tmp_path):
    shot = tmp_path / 'shot.png'
    browse([f'--screenshot={shot}', '--window-size=1200,900',
            'file://' + urllib.parse.quote(page)], tmp_path / 'profile')
    image = Image.open(shot)
    assert image.format == 'PNG' and image.size == (1200, 900)
    pixels = np.asarray(image.convert('RGB')).astype(int)
    # A page, not a blank or one-colour canvas: text, frames and the plot
    # give many colours and real contrast.
    colours = np.unique(pixels.reshape(-1, 3), axis=0)
    assert len(colours) > 200 and pixels.std() > 20
    return pixels


def dom(page, tmp_path):
    return browse(['--dump-dom', 'file://' + urllib.parse.quote(page)],
                  tmp_path / 'profile')


def test_chromium_renders_the_moments_page(moments, tmp_path):
    pixels = screenshot(moments['page'], tmp_path)
    # The header is white, the page around the sections light grey.
    assert (pixels[5, 5] == 255).all()
    after = Elements(dom(moments['page'], tmp_path))
    (body, ) = after.find('body')
    assert body.get('data-ready') == 'yes'
    # The script drew a mark on each video's strip per segment.
    assert len(after.find('span', 'mark')) == 4


def test_chromium_renders_the_ranking_page(ranking, tmp_path):
    screenshot(ranking['page'], tmp_path)
    after = Elements(dom(ranking['page'], tmp_path))
    (body, ) = after.find('body')
    assert body.get('data-ready') == 'yes'
    assert len(after.find('span', 'bar')) == 4
    (preview, ) = after.find('video')
    assert preview['src'] == '../v2.mp4'  # the best, chosen by the script
    assert 'playing' in after.find('tr', 'result')[0]['class']


LIGHT = '''
import json, sys, types
package = types.ModuleType('models')  # the plugin's modules, without
package.__path__ = [sys.argv[1] + '/models']  # its package's imports
sys.modules['models'] = package
from models.visualization import (plot_timeline, write_contact_sheet,
                                  write_moments_page)
result = json.load(open(sys.argv[2]))
video = result['videos'][0]
plot_timeline(video, result['queries'], sys.argv[3] + '/t.png')
write_contact_sheet(video, sys.argv[3] + '/s.jpg')
write_moments_page(result, sys.argv[3] + '/p.html')
print(sorted(m for m in ('torch', 'mmengine', 'mmaction') if m in
             sys.modules))
'''


def test_drawing_loads_neither_torch_nor_mmengine(moments, tmp_path):
    document = tmp_path / 'result.json'
    document.write_text(json.dumps(moments['result']))
    proc = subprocess.run(
        [sys.executable, '-c', LIGHT, ROOT, str(document), str(tmp_path)],
        capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip() == '[]'
    written = {p.name for p in tmp_path.iterdir()}
    assert written >= {'t.png', 's.jpg', 'p.html'}
