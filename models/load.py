"""``from models.load import init_actionclip``: the import path the
original ActionCLIP project documents; the loader lives in
``models/apis/loading.py``."""
from models.apis.loading import init_actionclip

__all__ = ['init_actionclip']
