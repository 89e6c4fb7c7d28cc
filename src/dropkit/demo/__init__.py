"""Bundled data, the one small training loop, the demo's sweep, and the evidence experiments.

The data comes from optional packages imported only when loaded: MNIST-1D from ``mnist1d`` and the
fallback digits from scikit-learn (``pip install 'dropkit[cli]'`` installs both).
"""

from dropkit.demo.data import Split, load_digits_split, load_mnist1d
from dropkit.demo.sweep import DemoRun, build_mlp, plan_sweep, run_sweep
from dropkit.demo.training import classification_metrics, fit, regression_metrics, seeded

__all__ = [
    "DemoRun",
    "Split",
    "build_mlp",
    "classification_metrics",
    "fit",
    "load_digits_split",
    "load_mnist1d",
    "plan_sweep",
    "regression_metrics",
    "run_sweep",
    "seeded",
]
