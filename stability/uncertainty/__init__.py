"""How sure is each rank, category and change: Monte Carlo uncertainty analysis of an index.

A computed index (:class:`~stability.pipeline.Result`) rests on modelling choices (weights,
normalisation, aggregation, outlier treatment, imputation, which indicators count) and on
the key informants who happened to be met.  This module recomputes the index many times with
those sources of uncertainty drawn at random and says, per location and round, how far its
rank, category and change since the previous round can move:

==============================  ====================================================================
:func:`run`                     the entry point: ``run(result)`` with the options of the spec's
                                ``uncertainty`` section (:class:`stability.spec.Uncertainty`)
:class:`Uncertainty`            the same in scikit-learn's shape: options in the constructor,
                                :meth:`Uncertainty.fit` sets ``result_``
:class:`UncertaintyResult`      ``locations``, ``summary`` and ``runs`` tables; ``write`` (CSV,
                                Parquet or Excel); ``matches`` (same spec hash and data version)
:func:`evaluate`                the index's summary outputs for given configurations (option paths
                                to values): the model function of :mod:`stability.sensitivity`
:func:`output_names`            the names of those outputs
:func:`index_scores`            the index of every unit for given configurations (the vectorised engine)
==============================  ====================================================================

Method
------
Each replicate ``r`` draws its randomness from ``numpy.random.default_rng([seed, r])``:

* **modelling choices** (``sources: [choices]``), from a child of that generator
  (``default_rng([seed, r]).spawn(1)[0]``), in this order: one alternative of the
  normalisation, the aggregation, the outlier treatment, the imputation and the indicator
  left out (each uniformly among its alternatives, the nominal choice included unless
  ``include_nominal: false``), then the weights (``noise``: every weight times ``1 + noise *
  U(-1, 1)``; ``dirichlet``: the shares of every aggregate's children from a Dirichlet
  distribution centred on the nominal shares);
* **key informants** (``sources: [informants]``), from the generator itself: the informants
  of every location and round are drawn again with replacement
  (:class:`stability.resample.InformantResampler`, the same draws as
  :func:`stability.change.informant_bootstrap` with the same seed), combined, and taken
  through the later steps with the fitted parameters of the run's configuration
  (:func:`stability.resample.replay`), so that only the informant sample varies.  A location
  with one informant does not vary: ``single_informant`` flags it.

Both sources can be drawn in the same replicate ("separately and together").  Ranks are
national within the round and within the region (``rank.within``), ``min`` ties, on scores
rounded to 1e-9 exactly as :func:`stability.pipeline.rank_and_categorise`; intervals are the
``(1 - level) / 2`` and ``(1 + level) / 2`` quantiles of the replicates (linear
interpolation, R's type 7 as COINr); category confidence is the share of the replicates in
each category; a change is ``beyond_noise`` when its interval excludes 0.

Modules
-------
The package reads like the method: :mod:`~stability.uncertainty.choices` (the options and the alternatives
of each choice), :mod:`~stability.uncertainty.sampling` (what each replicate draws),
:mod:`~stability.uncertainty.engine` (the vectorised index of a chunk of replicates),
:mod:`~stability.uncertainty.analysis` (:func:`run`, :class:`Uncertainty`, :func:`analyse`),
:mod:`~stability.uncertainty.results` (:class:`UncertaintyResult`), :mod:`~stability.uncertainty.sobol`
(the index as a model function, its factors and Sobol indices) and :mod:`~stability.uncertainty.saved`
(:func:`save_run`, :func:`load_run`).

How it is fast
--------------
The pipeline is not run once per replicate.  Each distinct configuration of the
data-driven steps (normalisation, treatment, imputation) is fitted once on the nominal
data (:meth:`~stability.pipeline.Result.recompute`, re-running only the affected steps) and
its normalised table cached; leaving an indicator out sets its weight to 0 and takes it out
of its aggregate's availability count, without refitting.  The aggregation of a chunk of
replicates with a weight vector each is a handful of array operations over (replicates x
units) per aggregate (arithmetic, geometric, harmonic and generalised means vectorised;
Copeland per replicate through the registry), with the missing-children rule and the
availability threshold of :func:`stability.aggregate.aggregate`.  Chunks are sized to the
memory budget ``chunk_mb`` and only each replicate's index (float32), ranks (int32) and
changes (float32) are kept.  Every replicate's numbers depend on its own seed only, so the
tables are the same whatever the chunking, and on a Dask cluster (``scheduler``).

Means that need positive scores (geometric, harmonic, generalised with ``p <= 0``) in a
replicate whose normalisation range ``[lo, hi]`` starts at 0 or below: the normalised
scores are mapped linearly onto [1, 100], aggregated, and the aggregate scores mapped back
onto ``[lo, hi]``, so that the categories keep their meaning.  A normalisation with no
fixed range is refused with them.

Examples
--------
>>> import stability as st                                           # doctest: +SKIP
>>> from stability import uncertainty
>>> spec = st.load_spec("data/specs/mali.yaml")
>>> result = st.compute("data/raw/mali_illustrative", spec)
>>> u = uncertainty.run(result, runs=500, normalise=["minmax"], winmax=True)
>>> u.locations[["location_id", "round", "rank", "rank_low", "rank_high", "robust_category"]]
>>> u.write("reports/uncertainty.xlsx")
"""

from .analysis import Uncertainty, analyse, run
from .choices import ALL_WINMAX, SOURCES, options
from .engine import DATA_STEPS, POSITIVE_RANGE
from .results import UncertaintyResult
from .saved import MANIFEST, RUN_FORMATS, load_run, save_run
from .sobol import FACTOR_LABELS, WEIGHT_SETS, evaluate, factors, index_scores, output_names, sobol_indices

__all__ = ["run", "analyse", "Uncertainty", "UncertaintyResult", "options", "evaluate", "output_names",
           "index_scores", "factors", "sobol_indices", "save_run", "load_run", "SOURCES", "ALL_WINMAX",
           "DATA_STEPS", "POSITIVE_RANGE", "FACTOR_LABELS", "WEIGHT_SETS", "RUN_FORMATS", "MANIFEST"]
