"""The Streamlit layer: views the pages compose and the access gate (the only package besides
``appstate`` that imports streamlit)."""
