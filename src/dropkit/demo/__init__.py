"""Bundled data and the small training loops behind ``dropkit demo``.

Needs scikit-learn for its bundled digits data (``pip install 'dropkit[cli]'``), imported only
when the data is loaded.
"""

from dropkit.demo.data import Split, load_digits_split
from dropkit.demo.sweep import DemoRun, build_mlp, run_sweep, train_classifier

__all__ = ["DemoRun", "Split", "build_mlp", "load_digits_split", "run_sweep", "train_classifier"]
