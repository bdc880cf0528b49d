"""tfcnn's Streamlit app: the navigation over the pages of ``pages/``.

Run with ``make run`` (or ``streamlit run app.py``). Every page shares the data-set chooser
of the sidebar (:mod:`tfcnn.ui.sidebar`).
"""

import streamlit as st

from tfcnn.ui import access
from tfcnn.ui.pages import PAGES

st.set_page_config(page_title="tfcnn: musically motivated CNNs", page_icon="🎼", layout="wide")
access.require_access()  # before the page list is drawn; each page also passes it first
st.navigation([st.Page(p.path, title=p.title, icon=p.icon, url_path=p.url or None,
                       default=not p.url) for p in PAGES]).run()
