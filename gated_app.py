"""tfcnn's app behind its sign-in gate: ``app.py`` served as an ``st.App`` whose first
middleware is :class:`tfcnn.ui.gate.SignInGate`.

``make run`` starts this (``python -m tfcnn.ui.preload run gated_app.py``, through
:mod:`tfcnn.ui.serve`) when ``TFCNN_APP_PASSWORD`` is set: then no endpoint of Streamlit's
server (script websocket, uploads, media, metrics, static files) answers before sign-in.
"""

from pathlib import Path

import streamlit as st
from starlette.middleware import Middleware

from tfcnn.ui.gate import SignInGate

app = st.App(str(Path(__file__).resolve().with_name("app.py")),
             middleware=[Middleware(SignInGate)])
