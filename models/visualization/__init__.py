"""Pictures, report pages and annotated videos of the tools, drawn from
their results only: :func:`plot_timeline` (PNG), :func:`write_contact_sheet`
(JPEG or PNG), :func:`write_moments_page` and :func:`write_ranking_page`
(self-contained HTML), :func:`write_annotated_video` (MP4 or GIF).
Importing it loads neither torch nor mmengine; every file is written
atomically.
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
