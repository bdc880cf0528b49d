"""The Streamlit layer: page helpers (the only package that imports streamlit)."""
