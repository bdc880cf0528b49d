"""The Streamlit layer of the app (the only package that imports streamlit)."""
