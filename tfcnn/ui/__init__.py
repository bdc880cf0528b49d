"""The Streamlit layer: views the pages compose (the only package besides ``appstate`` that
imports streamlit)."""
