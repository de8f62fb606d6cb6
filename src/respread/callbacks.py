"""`DiversityMonitor`, the collapse monitor for any transformers Trainer, at the import path a TRL user reaches for.

    from respread.callbacks import DiversityMonitor
    DiversityMonitor(["integer_1_100"], every=10, out="runs/mine").attach(trainer)

It lives in `respread.restore.callbacks`.
"""

from respread.restore.callbacks import DiversityMonitor, read_monitor

__all__ = ["DiversityMonitor", "read_monitor"]
