"""Regional comparison reports: parameterised notebooks, run by papermill.

``notebooks/regional_report.ipynb`` and ``notebooks/country_overview.ipynb``
are thin: each cell calls a function of this package.  ``stability report``
(:mod:`stability.report.runner`) runs them for one region or all, in parallel,
and exports self-contained HTML with nbconvert.
"""
