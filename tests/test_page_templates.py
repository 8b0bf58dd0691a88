"""The report pages, byte for byte: the moments and ranking pages of
documents that reach every branch (markup, quotes and ``&`` in file names,
queries and messages; missing frames, a broken result, no timeline, no
video, no result, a model that is not a dict) equal the pages stored in
``tests/fixtures/pages/``.

The stored pages were written by plain string building with
``html.escape``, whose entities for the two quotes differ in spelling
from Jinja's (compared as the same). The frames and timelines are
stand-ins (short data URIs made from the video's name and the time), so
that the pages do not depend on a JPEG or PNG encoder, and the videos are
named relative to the current folder, so that no temporary path shows in
a page. Regenerate with ``python tests/test_page_templates.py`` (it writes
the templates' pages) only when a page is meant to change.
"""
import base64
import os
import os.path as osp
import sys

import pytest

HERE = osp.dirname(osp.abspath(__file__))
EXPECTED = osp.join(HERE, 'fixtures', 'pages')
EVIL = '<script>alert("q")</script> & \'co\''


def fake_uri(kind: str, text: str) -> str:
    return (f'data:image/{kind};base64,' +
            base64.b64encode(text.encode()).decode())


def fake_thumbnails(video, times_s, fps=None, num_frames=None,
                    max_side=160):
    if 'moved' in video or 'gone' in video:
        return [], f'Cannot read frames of video {video!r}: <no file> & co'
    return [fake_uri('jpeg', f'{video}@{t!r}/{max_side}')
            for t in times_s], ''


def fake_timeline(video_result, queries, threshold=None, score_name=None):
    if not video_result.get('windows'):
        raise ValueError(f'Video {video_result.get("video")!r} has no '
                         'windows <to draw>')
    return f'{video_result["video"]}|{threshold}|{score_name}'.encode()


def fake_rate_and_length(video):
    from models.visualization.frames import FrameReadError
    if 'gone' in video:
        raise FrameReadError(f'Cannot open video {video!r} & "more"')
    return 8.0, 40


def segment(start, end, score, peak=None):
    out = dict(start_s=start, end_s=end, score=score)
    if peak is not None:
        out['peak_s'] = peak
    return out


def video_entry(video, segments, queries, duration=8.0, fps=8.0):
    windows = [[float(s), float(s + 2)] for s in range(int(duration) - 1)]
    entry = dict(video=video, windows=windows,
                 scores={q: [0.1 * (i % 7) for i in range(len(windows))]
                         for q in queries},
                 segments=segments)
    if duration:
        entry['duration_s'] = duration
    if fps:
        entry.update(fps=fps, num_frames=int(duration * fps))
    return entry


def moments_documents():
    """``{name: (document, page path)}``."""
    queries = ['a square moving right', EVIL, 'never seen']
    first = 'report/it\'s "first" & <1>.mp4'
    broken = video_entry('clips/broken.mp4', {}, queries)
    broken['scores'][queries[2]] = [float('nan')] * len(broken['windows'])
    full = dict(
        model=dict(weights='<b>w</b>.pth', built_from='config.py',
                   num_frames=8, views=[1, 'two <3>'], extra=None),
        queries=queries, window_s=2.0, stride_s=1.0, score='softmax',
        threshold=0.5,
        videos=[
            video_entry(first, {
                queries[0]: [segment(1.0, 3.0, 0.9, 2.5),
                             segment(5.0, 7.0, 0.7)],
                queries[1]: [segment(0.0, 2.0, 0.6123)],
                queries[2]: []}, queries),
            video_entry('clips/second.mp4',
                        {queries[0]: [segment(2.0, 6.25, 0.8)]}, queries,
                        duration=3725.0, fps=None),
            video_entry('clips/moved.mp4',
                        {queries[1]: [segment(0.5, 1.5, 0.55)]}, queries),
            dict(video_entry('clips/empty.mp4', {}, queries, duration=0),
                 windows=[], scores={q: [] for q in queries}),
            broken,
        ],
        failures={'clips/bad"<i>.mp4': 'Cannot decode <i>it</i> & more'})
    empty = dict(model=None, queries=['only <one>'], window_s=1,
                 stride_s=0.5, score=None, threshold=None, videos=[],
                 failures={})
    plain = dict(model='a model & <its> name', queries=[], videos=[
        dict(video='clips/second.mp4', windows=[[0.0, 1.0]], scores={},
             segments={}, duration_s=float('inf'))
    ], failures={'a.mp4': 'x', 'b.mp4': 'y'})
    return dict(moments_full=(full, 'report/moments.html'),
                moments_empty=(empty, 'moments_empty.html'),
                moments_plain=(plain, 'pages/deep/plain.html'))


def ranking_documents():
    results = [
        dict(rank=1, video='clips/v2 & "best".mp4', similarity=0.31),
        dict(rank=2, video='clips/<v0>.mp4', similarity=0.12),
        dict(rank=3, video='clips/gone.mp4', similarity=-0.05),
        dict(rank=4, video='v1.mp4', similarity=-0.2),
    ]
    full = dict(query=EVIL,
                model=dict(weights='tiny.pth', built_from='tiny_config.py',
                           num_frames=4),
                results=results,
                failures=[dict(video='clips/bad.mp4',
                               error='Cannot decode <video>'),
                          dict(video='clips/worse.mp4', message='m & m'),
                          'clips/bare "name".mp4'])
    empty = dict(query='nothing', model='', results=[], failures=[])
    return dict(ranking_full=(full, 'out/ranking.html'),
                ranking_empty=(empty, 'ranking_empty.html'))


def render_all(folder: str) -> dict:
    """Every page, rendered with the stand-ins, the current folder being
    ``folder``."""
    from models.visualization import html_report
    saved = (html_report.thumbnails, html_report.render_timeline,
             html_report.video_rate_and_length, os.getcwd())
    html_report.thumbnails = fake_thumbnails
    html_report.render_timeline = fake_timeline
    html_report.video_rate_and_length = fake_rate_and_length
    os.chdir(folder)
    try:
        pages = {
            name: html_report.moments_page(document, path)
            for name, (document, path) in moments_documents().items()
        }
        pages.update({
            name: html_report.ranking_page(document, path)
            for name, (document, path) in ranking_documents().items()
        })
    finally:
        (html_report.thumbnails, html_report.render_timeline,
         html_report.video_rate_and_length) = saved[:3]
        os.chdir(saved[3])
    return pages


def expected(name: str) -> str:
    with open(osp.join(EXPECTED, name + '.html'), encoding='utf-8',
              newline='') as f:
        return f.read()


@pytest.fixture(scope='module')
def pages(tmp_path_factory):
    return render_all(str(tmp_path_factory.mktemp('pages')))


@pytest.mark.parametrize('name', [
    'moments_full', 'moments_empty', 'moments_plain', 'ranking_full',
    'ranking_empty'
])
def test_page_equals_the_stored_page(pages, name):
    # Jinja's escaping (MarkupSafe) writes ' and " as &#39; and &#34;
    # where html.escape wrote &#x27; and &quot;: the same characters.
    old = expected(name).replace('&#x27;', '&#39;')
    old = old.replace('&quot;', '&#34;')
    assert pages[name] == old


def test_the_stored_pages_cover_every_branch():
    """What the stored pages hold, so that a regenerated page that lost a
    branch fails here too."""
    full = expected('moments_full')
    for piece in ('&lt;script&gt;alert(&quot;q&quot;)&lt;/script&gt; '
                  '&amp; &#x27;co&#x27;', 'it&#x27;s &quot;first&quot; '
                  '&amp; &lt;1&gt;.mp4', 'No frames: Cannot read frames',
                  'No timeline: Video', 'score of window 0 is nan',
                  'never seen: no segment found', '1:02:05.0 long',
                  '1 video could not be read', 'data:image/png;base64,'):
        assert piece in full, piece
    assert '<script>alert' not in full and '<b>w</b>' not in full
    assert 'No video was scored.' in expected('moments_empty')
    assert 'not recorded' in expected('moments_empty')
    assert '2 videos could not be read' in expected('moments_plain')
    ranking = expected('ranking_full')
    assert 'no thumbnail: Cannot open video' in ranking
    assert '3 videos could not be read' in ranking
    assert 'No video was ranked.' in expected('ranking_empty')


if __name__ == '__main__':
    import tempfile
    sys.path.insert(0, osp.dirname(HERE))
    os.makedirs(EXPECTED, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        for name, text in render_all(tmp).items():
            with open(osp.join(EXPECTED, name + '.html'), 'w',
                      encoding='utf-8', newline='') as f:
                f.write(text)
            print(name, len(text))
