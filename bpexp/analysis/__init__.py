"""Comparisons of tracked runs: which variant reaches the target first (pandas).

The flow is :func:`select_runs` (one sweep, each configuration and seed once)
-> :func:`load_histories` (every epoch, from the runs' ``history.csv``) ->
:func:`run_measures` (time to target on four x-axes, outcome) -> :func:`summarize`
(per group, across seeds), :func:`ecdf` and :func:`carried_curves` (the figures'
data).  ``python -m bpexp.report`` writes all of it as tables and figures.
"""

from bpexp.analysis.measures import (
    AXIS_LABELS,
    OUTCOMES,
    TO_TARGET,
    Target,
    carried_curves,
    ecdf,
    parse_target,
    quantiles,
    run_measures,
    summarize,
    wilson_interval,
    with_measures,
)
from bpexp.analysis.runs import (
    AXES,
    NoRunsError,
    Selection,
    cast_param,
    deduplicate,
    load_histories,
    load_runs,
    select_runs,
    swept_keys,
)

__all__ = [
    "AXES",
    "AXIS_LABELS",
    "OUTCOMES",
    "TO_TARGET",
    "NoRunsError",
    "Selection",
    "Target",
    "carried_curves",
    "cast_param",
    "deduplicate",
    "ecdf",
    "load_histories",
    "load_runs",
    "parse_target",
    "quantiles",
    "run_measures",
    "select_runs",
    "summarize",
    "swept_keys",
    "wilson_interval",
    "with_measures",
]
