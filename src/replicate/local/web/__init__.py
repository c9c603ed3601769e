"""The local server's web pages: the front page (``/``), a prediction's page (``urls.web``,
``/web/p/{id}``) and a model's page with its playground (the model ``url``, ``/web/{owner}/{name}``).

Server-rendered HTML with a strict ``Content-Security-Policy``; the stylesheet and the two small
scripts live in ``static/``. See ``common`` for the escaping rules every page follows.
"""

from __future__ import annotations

from .index import index_page, render_index
from .model import model_page, render_model
from .prediction import prediction_json, prediction_page, render_prediction

__all__ = [
    "index_page",
    "model_page",
    "prediction_json",
    "prediction_page",
    "render_index",
    "render_model",
    "render_prediction",
]
