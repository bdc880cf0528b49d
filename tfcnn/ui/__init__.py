"""The Streamlit layer: sidebar, run control and result views (the only package that imports
streamlit)."""
