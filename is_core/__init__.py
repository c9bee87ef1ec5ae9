"""isbench's library: importance weighting for CTR models. Pure numpy/pandas/scikit-learn/xgboost.

No Prefect and no Great Expectations here (a test keeps it so): every statistic lives, and is
tested, in this package; ``tasks/`` and ``flows/`` only wire it together.
"""

__version__ = "0.1.0"
