"""tfcnn: musically motivated CNNs on music spectrograms (Pons, Lidy & Serra 2016)."""

__version__ = "0.1.0"
