"""Search a folder of videos by free text: rank them by how well they match
a description.

Video features are cached per folder and model
(``$XDG_CACHE_HOME/actionclip/features``, else ``~/.cache/actionclip``;
``models/apis/feature_cache.py``): later searches embed only the videos
that are new or changed. Broken symbolic links and link loops in the
folder are listed with the videos that could not be read.

Examples (from the project root)::

    python tools/search_videos.py videos/ "a person juggling balls"
    python tools/search_videos.py videos/ "riding a unicycle" --topk 3 \\
        --clip ViT-B/32 --out ranking.csv
    python tools/search_videos.py videos/ "a dog catching a frisbee" \\
        --html ranking.html

The model and running options are those of ``tools/zero_shot.py``
(``models/apis/cli.py``). Exit status: 0 when every video was searched; 1
when some could not be read (the others are still ranked; the failures are
listed at the end); 2 when an argument or input is wrong or the model
cannot be loaded.
"""
import argparse
import os.path as osp
import sys
from typing import List, Tuple

from light_imports import load_light

cli = load_light('models.apis.cli')
CliError = cli.CliError
load_model_from_args = cli.load_model_from_args


def build_parser() -> argparse.ArgumentParser:
    """The command line of this tool."""
    parser = cli.tool_parser(__doc__, last=True)
    parser.add_argument(
        'folder',
        metavar='FOLDER',
        help='a folder of videos, walked with its subfolders')
    parser.add_argument('query', help='what to look for, in words')
    parser.add_argument(
        '--topk', type=int, default=10, help='videos to show (default 10)')
    parser.add_argument(
        '--cache',
        help='the feature cache file (default: one per folder in '
        '$XDG_CACHE_HOME/actionclip/features, else '
        '~/.cache/actionclip/features)')
    parser.add_argument(
        '--no-cache',
        action='store_true',
        help='embed every video again and write no cache')
    parser.add_argument(
        '--out',
        help='also write the ranking to a .json file (the query, the '
        'model, the results and the failures) or a .csv file (rank, '
        'video, similarity); default: none')
    parser.add_argument(
        '--html',
        metavar='PAGE',
        help='also write the ranking as one self-contained .html page: '
        'the query, each video\'s middle frame and similarity, a video '
        'preview on click (see docs/reports.md); default: none')
    cli.add_model_arguments(parser)
    return parser


def check_args(args: argparse.Namespace) -> None:
    """Check what needs no model, before torch is imported."""
    cli.check_minimums(('--topk', args.topk, 1))
    if not args.query.strip():
        raise CliError('The query is empty: describe what to look for')
    if args.no_cache and args.cache:
        raise CliError('--cache and --no-cache contradict each other')
    cli.check_output_path(args.out, ('.json', '.csv'), '--out')
    cli.check_output_path(args.html, ('.html', '.htm'), '--html')
    cli.check_model_args(args)
    cli.check_video_paths([args.folder], load_light('models.apis.video_files'))


def run(args: argparse.Namespace) -> int:
    """Rank the folder's videos; returns the exit status."""
    import torch

    from models.apis.feature_cache import (check_cache_path,
                                           default_cache_path,
                                           embed_folder_cached)
    from models.apis.video_scoring import (find_videos, path_problem,
                                           query_similarity,
                                           query_text_features)
    if not osp.isdir(args.folder):
        problem = path_problem(args.folder) or 'is not a folder'
        raise CliError(f'FOLDER {args.folder!r} {problem}: give the '
                       'folder that holds the videos')
    # Fails early on an empty folder; subfolders that cannot be listed are
    # reported with the unreadable videos.
    videos = find_videos([args.folder], unreadable={})
    cache = None if args.no_cache else (args.cache
                                        or default_cache_path(args.folder))
    if cache is not None:  # refused or its folder made before the work
        check_cache_path(cache)
    inputs = [*videos, cache, args.config, args.checkpoint, args.clip,
              args.model]
    cli.check_writable([('--out', args.out)], inputs)
    cli.check_writable([('--html', args.html)], [*inputs, args.out])
    scorer = load_model_from_args(args)
    workers = cli.decode_workers(args, scorer.device)
    query = query_text_features(scorer.model, args.query)

    features, stats = embed_folder_cached(
        scorer, args.folder, args.cache, args.batch_size,
        not args.no_progress, cli.report_skipped, workers,
        use_cache=not args.no_cache)
    failures = stats.failed
    print(f'Features: {len(stats.computed)} computed' + (
        ' (no cache)' if args.no_cache else
        f', {len(stats.reused)} from the cache {stats.cache_path}'
        f'{"" if stats.saved else " (not rewritten)"}'), file=sys.stderr)
    ranking: List[Tuple[str, float]] = []
    if features:
        scores = query_similarity(torch.stack(list(features.values())),
                                  query)
        order = scores.argsort(descending=True)[:args.topk].tolist()
        names = list(features)
        ranking = [(names[i], float(scores[i])) for i in order]
        print(f'Top {len(order)} of {len(names)} videos for '
              f'{args.query!r} (cosine similarity):')
        print('  rank  similarity  video')
        for rank, (name, similarity) in enumerate(ranking, 1):
            print(f'  {rank:>4}  {similarity:>10.4f}  {name}')
    if args.out or args.html:  # what the --out JSON holds, --html draws
        document = dict(query=args.query, model=scorer.describe(), results=[
            dict(rank=rank, video=video, similarity=similarity)
            for rank, (video, similarity) in enumerate(ranking, 1)
        ], failures=[dict(video=v, error=e) for v, e in failures.items()])
    if args.out:  # whole or not at all (a temporary file renamed)
        from models.utils.safe_io import write_json_or_csv
        write_json_or_csv(
            args.out, document, ['rank', 'video', 'similarity'],
            ([rank, video, f'{similarity:.6f}']
             for rank, (video, similarity) in enumerate(ranking, 1)))
        print(f'Wrote {args.out}', file=sys.stderr)
    if args.html:
        from models.visualization import write_ranking_page
        write_ranking_page(document, args.html)
        print(f'Wrote {args.html}', file=sys.stderr)
    # Unlisted subfolders count among the failures, and so in the total.
    return cli.report_failures(failures, len(features) + len(failures))


main = cli.tool_main(build_parser, run, check_args)


if __name__ == '__main__':
    sys.exit(main())
