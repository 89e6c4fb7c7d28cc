"""Figures (matplotlib), console tables and the HTML report of a rate sweep.

Knows histories and their diagnoses, not models. matplotlib and rich are imported only when a
figure is drawn or a rich table printed.
"""

from dropkit.report.console import SweepProgress, format_table, print_table
from dropkit.report.figures import plot_curves, plot_history, plot_rates
from dropkit.report.html import REPORT_FILES, owns_folder, write_report

__all__ = [
    "REPORT_FILES",
    "SweepProgress",
    "format_table",
    "owns_folder",
    "plot_curves",
    "plot_history",
    "plot_rates",
    "print_table",
    "write_report",
]
