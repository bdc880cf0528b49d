"""Onset-autocorrelation proxies on the tempo and rhythm scenarios (README "SynthBallroom as a lab").

Two feature sets per track, each classified by a 10-fold logistic regression: the onset
envelope's autocorrelation at absolute lags up to 60 frames (what one 1×60 Time filter can
reach), and at beat-relative lags up to 8 beats (the envelope resampled on the track's
exact beat from metadata.csv: tempo-normalised rhythm over two bars).

    python -m scripts.lab_proxies [DATA_ROOT]      # default data/
"""
import sys
import numpy as np, pandas as pd, soundfile as sf
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

FPS = 44100 / 1024
def onset_env(y):
    n_fft, hop = 2048, 1024
    frames = np.lib.stride_tricks.sliding_window_view(y.astype(np.float64), n_fft)[::hop]
    mag = np.log1p(100 * np.abs(np.fft.rfft(frames * np.hanning(n_fft), axis=1)))
    env = np.maximum(np.diff(mag, axis=0), 0).sum(1)
    return (env - env.mean()) / (env.std() + 1e-9)

def ac(x, lags):
    return np.array([np.mean(x[:-k] * x[k:]) for k in lags])

def feats(root):
    meta = pd.read_csv(f"{root}/metadata.csv")
    A, B, y = [], [], []
    for r in meta.itertuples():
        env = onset_env(sf.read(f"{root}/{r.dance}/{r.track}.wav")[0])
        A.append(ac(env, range(1, 61)))                      # absolute lags: a 1x60 filter's reach
        beat = 60.0 / r.bpm * FPS                             # frames per beat
        t = np.arange(0, env.size - 1, beat / 12)             # 12 samples per beat
        g = np.interp(t, np.arange(env.size), env)
        B.append(ac((g - g.mean()) / (g.std() + 1e-9), range(1, 97)))  # up to 8 beats (2 bars)
        y.append(r.dance)
    return np.array(A), np.array(B), np.array(y)

cv = StratifiedKFold(10, shuffle=True, random_state=0)
lr = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000, C=0.1))
root = sys.argv[1] if len(sys.argv) > 1 else "data"
for sc in ("rhythm", "tempo"):
    A, B, y = feats(f"{root}/synth-{sc}")
    for name, X in (("absolute lags <= 60 frames", A), ("beat-relative lags <= 8 beats", B)):
        s = cross_val_score(lr, X, y, cv=cv) * 100
        print(f"{sc:7s} {name:30s} {s.mean():5.1f} ± {s.std():4.1f} %")
