r"""Likelihood families: everything the package knows about one family, in one place.

A family is its likelihood of ``y`` given the linear predictor
:math:`\eta = x^\top \theta` (a NumPyro distribution, for the model), its
mean function (the inverse link), its log-likelihood, its held-out
predictive loss, draws of replicated responses and the check that a
response is valid for it. Adding a family means adding one class here and
naming it in :data:`FAMILY`.

The linear predictor is clipped where the inverse link would overflow:
at :data:`LOG_RATE_BOUND` before an exponential (poisson rates, and the
population GLM's Newton steps) and at :data:`LOGIT_BOUND` in the logistic
function, whose probabilities are exactly 0 or 1 in float64 well before it.
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import numpyro.distributions as dist

__all__ = [
    "FAMILIES",
    "FAMILY",
    "LOG_RATE_BOUND",
    "LOGIT_BOUND",
    "Gaussian",
    "Bernoulli",
    "Poisson",
    "StudentT",
    "NegativeBinomial",
    "Binomial",
    "Gamma",
    "family",
]

#: Bound on the linear predictor before ``exp`` (poisson rates; the population GLM).
LOG_RATE_BOUND = 30.0
#: Bound on the linear predictor in the logistic function (guards ``exp`` from overflow).
LOGIT_BOUND = 50.0


def _canonical_working(cls, eta, y, **aux):
    """``(r, w)``: the log-likelihood's derivative in ``eta`` and its Fisher information.

    A Newton step's score is then ``X^T r`` and its Hessian ``X^T diag(w) X``.
    For a canonical link, ``r = y - mu`` and ``w`` is the variance function.
    """
    mu = cls.mean(eta)
    return y - mu, cls.variance(mu)


def _sigmoid(eta):
    return 1.0 / (1.0 + np.exp(-np.clip(eta, -LOGIT_BOUND, LOGIT_BOUND)))


def _log_rate(eta):
    return np.exp(np.clip(eta, -LOG_RATE_BOUND, LOG_RATE_BOUND))


def _check_counts(values, name: str) -> None:
    if not np.all(np.isfinite(values)) or np.any(values < 0) or np.any(values != np.round(values)):
        raise ValueError(f"y must hold non-negative integer counts for the {name} family.")


class _Family:
    """What every family has, with the defaults; a family sets what differs."""

    #: The family's name, as ``family=`` takes it.
    name: str
    #: What the held-out comparison of the smoothing choice measures.
    loss_name: str
    #: Prior scale of each code's residual from the encoder's output (see ``problem``).
    code_residual_scale: float
    #: Whether the likelihood has a noise scale (chosen on held-out samples).
    has_noise_scale = False
    #: The likelihood's parameters besides the mean and the noise scale ...
    parameters: tuple = ()
    #: ... those of them learned with the MAP where not given (sites of the model) ...
    learned: tuple = ()
    #: ... and the one chosen on held-out samples, with its candidates (or None).
    grid = None
    #: Whether the response is scaled by robust statistics (median, MAD).
    robust = False

    @classmethod
    def fisher(cls, eta, y, **aux):
        """The log-likelihood's derivative in ``eta`` and its Fisher information.

        The Laplace approximation's pair; the Newton steps' ``working`` pair
        for every family but student_t (whose steps reweight least squares).
        """
        return cls.working(eta, y, **aux)

    @classmethod
    def predictive_loss(cls, eta: np.ndarray, y: np.ndarray, **aux) -> float:
        """The mean of :meth:`pointwise_loss`."""
        return float(np.mean(cls.pointwise_loss(eta, y, **aux)))


class Gaussian(_Family):
    """Identity link, normal noise with scale :math:`\\sigma` (the ``noise_scale``)."""

    name = "gaussian"
    loss_name = "mean squared error of standardised y"
    code_residual_scale = 0.1
    has_noise_scale = True

    @staticmethod
    def likelihood(eta, noise_scale, **aux):
        return dist.Normal(eta, noise_scale)

    @staticmethod
    def mean(eta: np.ndarray) -> np.ndarray:
        return eta

    @staticmethod
    def variance(mu: np.ndarray) -> np.ndarray:
        return np.ones_like(mu)

    @staticmethod
    def log_likelihood(eta, y, noise_scale, **aux) -> np.ndarray:
        return -0.5 * ((y - eta) / noise_scale) ** 2 - np.log(noise_scale * np.sqrt(2 * np.pi))

    working = classmethod(_canonical_working)

    @staticmethod
    def pointwise_loss(eta: np.ndarray, y: np.ndarray, **aux) -> np.ndarray:
        """Squared error of every sample."""
        return (y - eta) ** 2

    @staticmethod
    def replicate(eta, noise_scale, rng: np.random.Generator, **aux) -> np.ndarray:
        return eta + noise_scale * rng.standard_normal(eta.shape)

    @staticmethod
    def check_response(values: np.ndarray, **aux) -> None:
        pass


class Bernoulli(_Family):
    """Logit link, 0/1 responses."""

    name = "bernoulli"
    loss_name = "mean log-loss"
    code_residual_scale = 0.01

    @staticmethod
    def likelihood(eta, noise_scale, **aux):
        return dist.Bernoulli(logits=eta)

    mean = staticmethod(_sigmoid)

    @staticmethod
    def variance(mu: np.ndarray) -> np.ndarray:
        return mu * (1.0 - mu)

    @staticmethod
    def log_likelihood(eta, y, noise_scale, **aux) -> np.ndarray:
        return y * eta - np.logaddexp(0.0, eta)

    working = classmethod(_canonical_working)

    @staticmethod
    def pointwise_loss(eta: np.ndarray, y: np.ndarray, **aux) -> np.ndarray:
        """Log-loss of every sample."""
        return np.logaddexp(0.0, eta) - y * eta

    @classmethod
    def replicate(cls, eta, noise_scale, rng: np.random.Generator, **aux) -> np.ndarray:
        return (rng.random(eta.shape) < cls.mean(eta)).astype(np.int64)

    @staticmethod
    def check_response(values: np.ndarray, **aux) -> None:
        if not np.all((values == 0) | (values == 1)):
            raise ValueError("y must hold only 0 and 1 for the bernoulli family.")
        if np.unique(values).size < 2:
            raise ValueError("y holds a single class; a classifier needs both 0 and 1.")


class Poisson(_Family):
    """Log link, counts."""

    name = "poisson"
    loss_name = "mean Poisson deviance"
    code_residual_scale = 0.01

    @staticmethod
    def likelihood(eta, noise_scale, **aux):
        return dist.Poisson(jnp.exp(jnp.clip(eta, -LOG_RATE_BOUND, LOG_RATE_BOUND)))

    mean = staticmethod(_log_rate)

    @staticmethod
    def variance(mu: np.ndarray) -> np.ndarray:
        return mu

    @classmethod
    def log_likelihood(cls, eta, y, noise_scale, **aux) -> np.ndarray:
        from scipy.special import gammaln

        mu = cls.mean(eta)
        return y * np.log(mu) - mu - gammaln(y + 1.0)

    working = classmethod(_canonical_working)

    @classmethod
    def pointwise_loss(cls, eta: np.ndarray, y: np.ndarray, **aux) -> np.ndarray:
        """Poisson deviance of every sample."""
        mu = cls.mean(eta)
        ratio = np.where(y > 0, y * np.log(np.where(y > 0, y, 1.0) / mu), 0.0)
        return 2.0 * (ratio - (y - mu))

    @classmethod
    def replicate(cls, eta, noise_scale, rng: np.random.Generator, **aux) -> np.ndarray:
        return rng.poisson(np.minimum(cls.mean(eta), 1e12))

    @staticmethod
    def check_response(values: np.ndarray, **aux) -> None:
        _check_counts(values, "poisson")


class StudentT(_Family):
    r"""Identity link, Student-t noise: scale :math:`\sigma` (``noise_scale``), ``df`` :math:`\nu`.

    A robust alternative to the gaussian family: a few gross outliers pull
    the fit much less. The degrees of freedom are learned with the MAP
    (prior :math:`\nu \sim \mathrm{Gamma}(2, 0.1)`, Juarez and Steel 2010)
    unless given; the scale is chosen on held-out samples as the gaussian
    noise scale is, by absolute error (squared error would let the
    outliers choose).
    """

    name = "student_t"
    loss_name = "mean absolute error of standardised y"
    code_residual_scale = 0.1
    parameters: tuple = ("df",)
    learned: tuple = ("df",)
    robust = True
    has_noise_scale = True

    @staticmethod
    def prior(site: str):
        return dist.Gamma(2.0, 0.1)

    @staticmethod
    def likelihood(eta, noise_scale, *, df, **aux):
        return dist.StudentT(df, eta, noise_scale)

    mean = Gaussian.mean
    variance = Gaussian.variance

    @staticmethod
    def working(eta, y, *, df=4.0, noise_scale=1.0, **aux):
        # Iteratively reweighted least squares for the t likelihood.
        r = y - eta
        w = (df + 1.0) / (df + (r / noise_scale) ** 2)
        return w * r, w

    @staticmethod
    def fisher(eta, y, *, df, noise_scale, **aux):
        """The log-likelihood's derivative in ``eta`` and its Fisher information."""
        r = y - eta
        variance = noise_scale**2
        information = (df + 1.0) / ((df + 3.0) * variance)
        return (df + 1.0) * r / (df * variance + r**2), np.full_like(r, information)

    @staticmethod
    def log_likelihood(eta, y, noise_scale, *, df, **aux) -> np.ndarray:
        from scipy.stats import t

        return t.logpdf(y, df, loc=eta, scale=noise_scale)

    @staticmethod
    def pointwise_loss(eta: np.ndarray, y: np.ndarray, **aux) -> np.ndarray:
        """Absolute error of every sample."""
        return np.abs(y - eta)

    @staticmethod
    def replicate(eta, noise_scale, rng: np.random.Generator, *, df, **aux) -> np.ndarray:
        return eta + noise_scale * rng.standard_t(np.broadcast_to(df, np.shape(eta)))

    @staticmethod
    def check_response(values: np.ndarray, **aux) -> None:
        pass


class NegativeBinomial(_Family):
    r"""Log link, overdispersed counts (NB2): variance :math:`\mu + \mu^2 / \phi`.

    The concentration :math:`\phi` is learned with the MAP (prior
    :math:`\log\phi \sim N(0, 3^2)`); as :math:`\phi \to \infty` the family
    becomes the poisson one. Held-out samples are scored by the poisson
    deviance, a proper score for the mean that needs no :math:`\phi`.
    """

    name = "negative_binomial"
    loss_name = "mean Poisson deviance"
    code_residual_scale = 0.01
    parameters: tuple = ("concentration",)
    learned: tuple = ("concentration",)

    @staticmethod
    def prior(site: str):
        return dist.LogNormal(0.0, 3.0)

    @staticmethod
    def likelihood(eta, noise_scale, *, concentration, **aux):
        mean = jnp.exp(jnp.clip(eta, -LOG_RATE_BOUND, LOG_RATE_BOUND))
        return dist.NegativeBinomial2(mean, concentration)

    mean = staticmethod(_log_rate)

    @staticmethod
    def variance(mu, *, concentration=np.inf, **aux):
        return mu + mu**2 / concentration

    @staticmethod
    def working(eta, y, *, concentration=np.inf, **aux):
        mu = _log_rate(eta)
        factor = 1.0 / (1.0 + mu / concentration)
        return (y - mu) * factor, mu * factor

    @staticmethod
    def moment_concentration(y, mu) -> float:
        r"""Moment estimate of :math:`\phi` from fitted means (large when not overdispersed)."""
        excess = np.mean((y - mu) ** 2 - mu)
        return float(np.clip(np.mean(mu**2) / max(excess, 1e-8), 1e-2, 1e4))

    @staticmethod
    def log_likelihood(eta, y, noise_scale, *, concentration, **aux) -> np.ndarray:
        from scipy.special import gammaln

        mu, phi = _log_rate(eta), concentration
        return (
            gammaln(y + phi)
            - gammaln(phi)
            - gammaln(y + 1.0)
            + phi * np.log(phi / (phi + mu))
            + y * np.log(mu / (phi + mu))
        )

    pointwise_loss = Poisson.pointwise_loss

    @staticmethod
    def replicate(eta, noise_scale, rng: np.random.Generator, *, concentration, **aux):
        mu = np.minimum(_log_rate(eta), 1e12)
        phi = np.broadcast_to(concentration, mu.shape)
        return rng.poisson(rng.gamma(phi, mu / phi))

    @staticmethod
    def check_response(values: np.ndarray, **aux) -> None:
        _check_counts(values, "negative_binomial")


class Binomial(_Family):
    r"""Logit link, :math:`y_i` successes out of :math:`n_i` trials (``trials``).

    ``predict`` returns the probability of success per trial. Held-out
    samples are scored by the binomial log-loss.
    """

    name = "binomial"
    loss_name = "mean log-loss per sample"
    code_residual_scale = 0.01

    @staticmethod
    def likelihood(eta, noise_scale, *, trials, **aux):
        return dist.Binomial(total_count=trials, logits=eta)

    mean = staticmethod(_sigmoid)

    @staticmethod
    def variance(mu, *, trials=1.0, **aux):
        return trials * mu * (1.0 - mu)

    @staticmethod
    def working(eta, y, *, trials, **aux):
        p = _sigmoid(eta)
        return y - trials * p, trials * p * (1.0 - p)

    @staticmethod
    def log_likelihood(eta, y, noise_scale, *, trials, **aux) -> np.ndarray:
        from scipy.special import gammaln

        choose = gammaln(trials + 1.0) - gammaln(y + 1.0) - gammaln(trials - y + 1.0)
        return choose + y * eta - trials * np.logaddexp(0.0, eta)

    @staticmethod
    def pointwise_loss(eta: np.ndarray, y: np.ndarray, *, trials, **aux) -> np.ndarray:
        """Log-loss of every sample (its ``trials`` Bernoulli terms added up)."""
        return trials * np.logaddexp(0.0, eta) - y * eta

    @staticmethod
    def replicate(eta, noise_scale, rng: np.random.Generator, *, trials, **aux) -> np.ndarray:
        p = _sigmoid(eta)
        return rng.binomial(np.broadcast_to(np.asarray(trials, dtype=np.int64), p.shape), p)

    @staticmethod
    def check_response(values: np.ndarray, *, trials=None, **aux) -> None:
        _check_counts(values, "binomial")
        if trials is None:
            raise ValueError(
                "the binomial family needs the number of trials of every sample: "
                "fit(X, y, covariates, trials=...)."
            )
        if np.any(values > trials):
            bad = int(np.argmax(values > trials))
            raise ValueError(
                f"y (successes) exceeds trials at sample {bad} ({values[bad]:g} > "
                f"{trials[bad]:g}); y must count successes out of trials."
            )


class Gamma(_Family):
    r"""Log link, positive continuous responses: mean :math:`\mu`, shape :math:`k`.

    Variance :math:`\mu^2 / k`; the shape (``concentration``) is chosen on
    held-out samples among :attr:`grid`, by the gamma deviance.
    """

    name = "gamma"
    loss_name = "mean gamma deviance"
    code_residual_scale = 0.1
    parameters: tuple = ("concentration",)
    #: Shapes tried (coefficients of variation 1, 1/2, 1/4, 1/8): like the
    #: gaussian noise scale, a MAP of a learned shape grows without bound as
    #: the per-sample models fit the responses ever closer (28,800 on
    #: ``make_gamma``, N = 500, against the true 5), so it is chosen instead.
    grid = ("concentration", (1.0, 4.0, 16.0, 64.0))

    @staticmethod
    def likelihood(eta, noise_scale, *, concentration, **aux):
        rate = concentration * jnp.exp(-jnp.clip(eta, -LOG_RATE_BOUND, LOG_RATE_BOUND))
        return dist.Gamma(concentration, rate)

    mean = staticmethod(_log_rate)

    @staticmethod
    def variance(mu, *, concentration=1.0, **aux):
        return mu**2 / concentration

    @staticmethod
    def working(eta, y, *, concentration=1.0, **aux):
        # Fisher scoring for the log link: score k X^T (y - mu) / mu, information k X^T X
        # (the population GLM's steps leave k at 1: it cancels in the step).
        mu = _log_rate(eta)
        return concentration * (y - mu) / mu, np.full_like(mu, concentration)

    @staticmethod
    def moment_concentration(y, mu) -> float:
        """Moment estimate of the shape :math:`k` from fitted means."""
        return float(np.clip(1.0 / max(np.mean(((y - mu) / mu) ** 2), 1e-8), 1e-2, 1e4))

    @staticmethod
    def log_likelihood(eta, y, noise_scale, *, concentration, **aux) -> np.ndarray:
        from scipy.special import gammaln

        k, mu = concentration, _log_rate(eta)
        return k * np.log(k / mu) - gammaln(k) + (k - 1.0) * np.log(y) - k * y / mu

    @staticmethod
    def pointwise_loss(eta: np.ndarray, y: np.ndarray, **aux) -> np.ndarray:
        """Gamma deviance of every sample."""
        mu = _log_rate(eta)
        return 2.0 * (-np.log(y / mu) + (y - mu) / mu)

    @staticmethod
    def replicate(eta, noise_scale, rng: np.random.Generator, *, concentration, **aux):
        mu = _log_rate(eta)
        k = np.broadcast_to(concentration, mu.shape)
        return rng.gamma(k, mu / k)

    @staticmethod
    def check_response(values: np.ndarray, **aux) -> None:
        if not np.all(np.isfinite(values)) or np.any(values <= 0):
            raise ValueError(
                "y must hold positive values for the gamma family (a zero or negative "
                "response has no gamma likelihood; for counts use poisson or negative_binomial)."
            )


#: Every family by name.
FAMILY = {
    f.name: f for f in (Gaussian, Bernoulli, Poisson, StudentT, NegativeBinomial, Binomial, Gamma)
}
#: Names of the families, as accepted by ``family=``.
FAMILIES = tuple(FAMILY)


def family(name: str):
    """The family called ``name``; a clear error for an unknown one."""
    try:
        return FAMILY[name]
    except (KeyError, TypeError):
        raise ValueError(f"family must be one of {FAMILIES}; got {name!r}.") from None
