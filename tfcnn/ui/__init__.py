"""The Streamlit layer: what the pages call beyond one call into the core package.

The only package of tfcnn that imports streamlit. Split by concern:

- :mod:`tfcnn.ui.sidebar`: the data-set chooser shared by every page, cached data-set loads;
- :mod:`tfcnn.ui.data_views`: class counts, feature-cache state and build, track log-mels;
- :mod:`tfcnn.ui.architectures`: the home page's architecture table and diagram;
- :mod:`tfcnn.ui.predict`: model choices, cached checkpoints, upload checks, prediction;
- :mod:`tfcnn.ui.run_control`: training subprocesses (launch, cancel) and their run folders;
- :mod:`tfcnn.ui.results`: views of result sets: Table 1, one result in detail, downloads;
- :mod:`tfcnn.ui.compare_view`: the comparison of two results (interval, p values, verdict);
- :mod:`tfcnn.ui.pages`: the app's pages, in menu order;
- :mod:`tfcnn.ui.access`: the password gate of an exposed app; :mod:`tfcnn.ui.serve`: starting it.
"""
