"""Pictures, report pages and annotated videos of ``tools/find_moments.py``,
``tools/search_videos.py`` and ``tools/zero_shot.py``, drawn from their
results only.

* :func:`plot_timeline`: each query's score over a video's time, the
  found segments shaded (PNG, matplotlib);
* :func:`write_contact_sheet`: frames of the top segments in a grid, a
  caption per row (JPEG or PNG);
* :func:`write_moments_page`, :func:`write_ranking_page`: one
  self-contained HTML file each (thumbnails and timeline embedded, a
  ``<video>`` that seeks to a segment or previews a result on click);
* :func:`write_annotated_video`: ``tools/zero_shot.py --viz``, a video
  with its top-k predictions in a band under every frame (MP4 or GIF).

Importing this package loads neither torch nor mmengine; matplotlib and
OpenCV are imported when a picture is drawn. Every file is written
atomically (``models/utils/safe_io.py``).
"""
from models.visualization.contact_sheet import write_contact_sheet
from models.visualization.frames import FrameReadError
from models.visualization.html_report import (write_moments_page,
                                              write_ranking_page)
from models.visualization.prediction_video import write_annotated_video
from models.visualization.timeline import plot_timeline

__all__ = [
    'FrameReadError', 'plot_timeline', 'write_annotated_video',
    'write_contact_sheet', 'write_moments_page', 'write_ranking_page'
]
