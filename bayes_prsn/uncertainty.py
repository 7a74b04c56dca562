"""The estimators' uncertainty methods: ``sample_posterior``, credible intervals, summaries.

:class:`UncertaintyMixin` gives :class:`~bayes_prsn.PersonalizedRegression`
and :class:`~bayes_prsn.PersonalizedClassifier` their posterior face; the
work is done by :mod:`bayes_prsn.sampling` (the target and the back-ends),
:mod:`bayes_prsn.inference_data` (intervals and summaries) and
:mod:`bayes_prsn.predict` (posterior predictive draws for new samples).
"""

from __future__ import annotations

import numpy as np

from .defaults import POSTERIOR_DEFAULTS
from .parallel import check_n_jobs, resolve_n_jobs
from .pooling import check_refits, draws_per_fit, pooled_posterior
from .predict import predictive_draws
from .state import (
    PosteriorState,
    fitted_state,
    has_posterior,
    posterior_attributes,
    posterior_state,
)

__all__ = ["UncertaintyMixin"]


class UncertaintyMixin:
    """Posterior methods of the personalized estimators (which provide ``_new_samples``)."""

    def _publish_posterior(self, posterior: PosteriorState) -> None:
        self.__dict__.update(posterior_attributes(posterior))

    def sample_posterior(
        self,
        method: str = POSTERIOR_DEFAULTS["method"],
        *,
        num_warmup: int = POSTERIOR_DEFAULTS["num_warmup"],
        num_samples: int | None = POSTERIOR_DEFAULTS["num_samples"],
        num_chains: int = POSTERIOR_DEFAULTS["num_chains"],
        random_state: int | None = None,
        progress_bar: bool | None = None,
        thinning: int = POSTERIOR_DEFAULTS["thinning"],
        max_memory_gb: float | None = None,
        refits: int | str = "auto",
        **options,
    ):
        r"""Draw from the posterior of every sample's model; sets and returns ``idata_``.

        With the covariate encoder (the default) the draws are of the parts
        all samples share, the encoder, the dictionary :math:`Q` and the
        offset :math:`\bar\theta`, in the model linearised at the MAP, with
        the covariate weights at the MAP and each sample's pooled residual
        code at the MAP plus its standard error; every :math:`\theta_i`
        follows. The prior precisions of the
        shared parts and the gaussian noise scale are learned from the data
        (type-II maximum likelihood; NUTS and VI also sample the noise
        scale). Without the encoder the draws are of the codes :math:`Z` and
        the covariate weights given the MAP :math:`Q` and :math:`\bar\theta`,
        at the held-out noise level. See :mod:`bayes_prsn.sampling`.

        Parameters
        ----------
        method : {"auto", "nuts", "laplace", "vi"}, default "auto"
            ``"auto"``: ``"laplace"`` for 0/1 data (the bernoulli family, with
            the encoder), ``"nuts"`` otherwise (:func:`~bayes_prsn.sampling.auto_method`).
            ``"nuts"``: NUTS, every chain started at (or near) the MAP, in
            coordinates whitened by the Gaussian approximation. ``"laplace"``:
            the Gaussian approximation at the MAP (covariance from the
            Gauss-Newton curvature and the learned scales; seconds, any N).
            ``"vi"``: a low-rank-plus-diagonal Gaussian fitted by SVI.
            (Without the encoder: NUTS with diagonal mass for the centred codes
            and dense for :math:`\phi` and the codes' common shift; a Gaussian
            with the inverse Hessian, dense up to 4000 unknowns; SVI.)
        num_warmup : int, default 1000
            Warm-up iterations per chain (NUTS only).
        num_samples : int, optional
            Draws per chain for NUTS (default 2000: with 1000 the largest of
            ~800 split R-hats reached 1.013 on one of three test seeds) or in
            total for ``"laplace"`` and ``"vi"`` (default 1000), for each fit
            pooled (``refits``). Above 20,000 samples the default draws are
            shared among the pooled fits (250 each of four Laplace fits), so
            that they take one fit's memory (:func:`~bayes_prsn.pooling.draws_per_fit`).
        num_chains : int, default 4
            Chains (NUTS only). They run in parallel when JAX has a device per
            chain (``numpyro.set_host_device_count(4)`` before JAX starts) and
            one after another otherwise.
        random_state : int or None
            Seed of the sampler; ``None`` derives one from the estimator's.
        progress_bar : bool or None
            Show progress; ``None`` follows the estimator's ``progress_bar``.
        thinning : int, default 1
            Keep every ``thinning``-th NUTS draw (saves memory for large N).
        max_memory_gb : float or None
            Refuse to start when the draws and their ArviZ conversion would
            need more memory than this (estimated before sampling; default
            half of the machine's memory, see :data:`MEMORY_FRACTION`; with
            ``refits``, for the draws of every fit).
        refits : int or "auto", default "auto"
            Fit the same data this many more times, with other random states
            (the held-out split that chooses the smoothing, the start, the
            random pairs), draw each fit's posterior with the same method and
            settings, and pool the draws in equal shares
            (:mod:`bayes_prsn.pooling`). One fit's posterior does not see how
            much ``coef_`` depends on those choices, a large share of the
            error where one held-out split chose the smoothing (from 1,000
            samples on); the pooled intervals include it. ``"auto"``: the
            other fits that ``fit`` averaged into ``coef_`` (``n_fits``: 3
            for the bernoulli, binomial, poisson and negative_binomial
            families where one split chose it, up to 20,000 samples, and for
            gaussian data of 5,000 to 20,000 samples), so that the pooled
            mean is ``coef_``; without them (``n_fits=1``) 3 fresh refits for
            those fits, else none (:func:`~bayes_prsn.pooling.auto_refits`;
            below 5,000 samples one gaussian fit's intervals were right on
            some data sets and pooled ones too wide). 0 draws from the first
            fit alone. The averaged fits come first; each refit beyond them
            costs a fit, and every fit a back-end run. The pooled ArviZ data
            hold every fit's chains, the first fit's first;
            ``posterior_diagnostics_`` holds each fit's report (``per_fit``)
            and the worst of them, as do ``summary()``'s ``ess_bulk``,
            ``ess_tail`` and ``r_hat`` (R-hat across fits would measure how
            much the fits disagree, not whether the sampler mixed). Posterior
            predictions for new samples then average their nearest training
            samples' coefficient draws.
        **options
            Passed to the back-end (:func:`bayes_prsn.posterior.run_nuts`,
            ``run_laplace`` or ``run_vi``), e.g. ``target_accept_prob``,
            ``chain_method``, ``num_steps``, ``guide_rank``. NUTS chains on
            one device run side by side on ``n_jobs`` threads (the same
            draws as one after another).

        Returns
        -------
        ArviZ ``InferenceData`` (ArviZ 0.x) or ``DataTree`` (ArviZ 1.x).
        Groups: ``posterior`` (``coef`` with dims (chain, draw, obs_id,
        feature), ``intercept`` (chain, draw, obs_id), ``noise_scale`` where
        sampled (gaussian, NUTS and VI) and, without the encoder,
        ``covariate_weights``), ``log_likelihood`` (``y`` only, so ``az.loo``
        works), ``posterior_predictive``, ``observed_data``,
        ``constant_data`` (``X``; the learned ``prior_precision_<site>``,
        ``effective_parameters``, ``noise_scale`` (type-II ML) and the MAP
        ``covariate_weights``; without the encoder the quantities held
        fixed: ``dictionary``, ``offset_coef``, ``offset_intercept``,
        ``noise_scale``, ``gamma``) and, for NUTS, ``sample_stats``.

        Warns
        -----
        ConvergenceWarning
            For NUTS, when any coefficient has split R-hat above 1.01, bulk
            or tail ESS below 100 per chain, or when a transition diverged;
            the numbers are in the message and in ``posterior_diagnostics_``.
        """
        from .sampling import auto_method, default_num_samples, sample_posterior

        state = fitted_state(self)
        if isinstance(method, str):
            method = method.lower()  # "NUTS" and "Laplace" are the same methods
        if method == "auto":
            method = auto_method(state)
        if random_state is None:
            random_state = np.random.default_rng(self.random_state).integers(2**31 - 1)
        refits = check_refits(refits, state)
        check_n_jobs(self.n_jobs)
        # The draws asked for: this fit's, and each refit's alike.
        draws = {
            "num_warmup": num_warmup,
            "num_samples": draws_per_fit(
                state, num_samples, default_num_samples(method), refits + 1
            ),
            "num_chains": num_chains,
            "progress_bar": bool(self.progress_bar) if progress_bar is None else progress_bar,
            "thinning": thinning,
            "max_memory_gb": max_memory_gb,
        }
        random_state = int(random_state)
        posterior = sample_posterior(
            state,
            method,
            random_state=random_state,
            options=options,
            fits=refits + 1,
            threads=resolve_n_jobs(self.n_jobs),
            **draws,
        )
        if refits:
            posterior = pooled_posterior(
                self,
                state,
                posterior,
                refits=refits,
                random_state=random_state,
                method=method,
                **draws,
                **options,
            )
        self._publish_posterior(posterior)
        return posterior.idata

    def posterior_memory_gb(self, total_draws: int) -> float:
        """Estimated memory (GB) of ``total_draws`` posterior draws and their ArviZ data.

        Counts the code and covariate-weight draws (float32) and the ArviZ
        groups with one value per draw and sample: ``coef``, ``intercept``,
        ``log_likelihood`` and ``posterior_predictive`` (float64).
        """
        from .sampling import posterior_memory_gb

        return posterior_memory_gb(fitted_state(self), total_draws)

    def coef_interval(self, prob: float = 0.9, kind: str = "hdi"):
        """Credible interval of every sample's coefficients.

        Parameters
        ----------
        prob : float, default 0.9
            Posterior probability inside the interval.
        kind : {"hdi", "eti"}, default "hdi"
            Highest-density or equal-tailed interval.

        Returns
        -------
        lower, upper : ndarray of shape (n_samples, n_features)
        """
        from .inference_data import posterior_interval

        return posterior_interval(posterior_state(self).idata, "coef", prob, kind)

    def intercept_interval(self, prob: float = 0.9, kind: str = "hdi"):
        """Credible interval of every sample's intercept; each bound has shape (n_samples,)."""
        from .inference_data import posterior_interval

        posterior = posterior_state(self)
        if not fitted_state(self).fit_intercept:
            raise ValueError("the model has no intercept (fit_intercept=False).")
        return posterior_interval(posterior.idata, "intercept", prob, kind)

    def summary(self, var_names=None, samples=None, prob: float = 0.9, kind: str = "hdi"):
        """A table of the fit: the MAP overview, or the posterior's summaries.

        Without a posterior (a plain ``fit``) and without ``samples``: one
        row per coefficient (``coef[name]``, ``intercept``) with the
        ``population`` model's value and the spread of the per-sample MAP
        coefficients across samples (``mean``, ``sd``, ``5%``, ``50%``,
        ``95%``), then one row per covariate weight (``covariate_weights[name]``,
        the learned metric weight in ``mean``). With ``samples`` (and no
        posterior): one row per scalar of those samples, named as below,
        with the MAP value in ``map``.

        After :meth:`sample_posterior`, the posterior's ArviZ-style summaries:

        Parameters
        ----------
        var_names : list of str, optional
            Variables of the posterior group (default: all of ``coef``,
            ``intercept``, ``covariate_weights``).
        samples : list, optional
            Labels (``obs_id`` coordinates, i.e. the index of the training
            data) of the samples to include; default all.
        prob, kind
            Interval as in :meth:`coef_interval`.

        Returns
        -------
        pandas.DataFrame
            One row per scalar, named like ``coef[obs_id, feature]``, with
            columns ``mean``, ``sd``, the interval bounds (``hdi_5%``,
            ``hdi_95%`` at ``prob=0.9``), ``ess_bulk``, ``ess_tail`` and
            ``r_hat`` (rank-normalised split R-hat, as in ArviZ; for a pooled
            posterior each fit's on its own chains, the worst of them; NaN for one
            chain, and ESS and R-hat are NaN for ``"laplace"`` and ``"vi"``,
            whose draws are independent).
        """
        from . import arviz_compat
        from .inference_data import summary_table

        if not has_posterior(self):
            return _map_summary(self, fitted_state(self), samples)
        posterior = posterior_state(self)
        return summary_table(
            arviz_compat.group(posterior.idata, "posterior"),
            mcmc=posterior.method == "nuts",
            fits=posterior.fits,
            var_names=var_names,
            samples=samples,
            prob=prob,
            kind=kind,
        )

    def _predictive_interval(self, X, covariates, prob, *, noise: bool, seed, exposure=None):
        """Equal-tailed interval (lower, upper) of the posterior predictive draws."""
        from .inference_data import check_prob
        from .sample_inputs import log_exposure

        prob = check_prob(prob)
        posterior = posterior_state(self)
        X, encoded = self._new_samples(X, covariates)
        state = fitted_state(self)
        draws = predictive_draws(
            state,
            posterior,
            X,
            encoded,
            n_neighbors=self.n_neighbors,
            noise=noise,
            seed=seed,
            eta_offset=log_exposure(state.family, exposure, X.shape[0]),
        )
        lower, upper = np.quantile(draws, [(1 - prob) / 2, (1 + prob) / 2], axis=0)
        return lower, upper


def _map_summary(estimator, state, samples):
    """The MAP table of :meth:`UncertaintyMixin.summary` (no posterior)."""
    import pandas as pd

    names = [str(name) for name in state.feature_labels]
    values = estimator.coef_
    population = list(estimator.population_coef_)
    rows = [f"coef[{name}]" for name in names]
    if state.fit_intercept:
        values = np.column_stack([values, estimator.intercept_])
        population.append(estimator.population_intercept_)
        rows.append("intercept")
    if samples is not None:
        from .inference_data import check_sample_labels

        labels = list(state.sample_index)
        samples = [samples] if np.isscalar(samples) else list(samples)
        check_sample_labels(samples, labels)
        entries = {}
        for sample in samples:
            position = labels.index(sample)
            for row, value in zip(rows, values[position], strict=True):
                entries[row.replace("[", f"[{sample}, ") if "[" in row else f"{row}[{sample}]"] = (
                    value
                )
        return pd.DataFrame({"map": pd.Series(entries, dtype=float)})
    table = pd.DataFrame(
        {
            "population": population,
            "mean": values.mean(axis=0),
            "sd": values.std(axis=0, ddof=1) if values.shape[0] > 1 else np.nan,
            "5%": np.quantile(values, 0.05, axis=0),
            "50%": np.quantile(values, 0.5, axis=0),
            "95%": np.quantile(values, 0.95, axis=0),
        },
        index=rows,
    )
    weights = pd.DataFrame(
        {"mean": np.asarray(estimator.covariate_weights_, dtype=float)},
        index=[f"covariate_weights[{name}]" for name in estimator.covariate_names_used_],
    )
    return pd.concat([table, weights])
