r"""Posterior back-ends for the shared parts: Laplace, NUTS and VI on one target.

The target is :func:`bayes_prsn.models.linearised_glm` with the scales
learned in :func:`bayes_prsn.evidence.shared_target`. All three back-ends
work in whitened coordinates :math:`u`, with the shared parts
:math:`w = \hat w + C u` for the MAP :math:`\hat w` and the Cholesky
factor :math:`C` of the Gaussian approximation's covariance; the map is
linear, so the density of :math:`w` is the model's.

``"laplace"``
    :math:`u \sim N(0, I)`: the Gaussian (linearised Laplace) approximation
    at the MAP, the noise scale at its learned value.
``"nuts"``
    NUTS on the exact density of :math:`u` (hence of :math:`w`), with the
    gaussian noise scale sampled too (prior :math:`\mathrm{HalfNormal}(1)`,
    model units); in whitened coordinates the posterior is close to a
    standard normal, so NUTS mixes in a few steps per draw.
``"vi"``
    a Gaussian with low-rank-plus-diagonal covariance in :math:`u` fitted by
    SVI from the Laplace approximation (and the noise scale's guide).

Each back-end returns :class:`~bayes_prsn.posterior.PosteriorDraws` whose
``samples`` hold ``shared`` (the flat shared parts, in the order of
:func:`bayes_prsn.evidence.flatten`) and, where drawn, ``noise_scale``
(model units), shaped ``(chain, draw, ...)``.
"""

from __future__ import annotations

import functools
import operator
import time

import jax
import jax.numpy as jnp
import numpy as np
import numpyro

from .evidence import SharedTarget, flatten, precision_vector
from .models import family, linearised_glm
from .parallel import TRACE_LOCK, run_in_threads
from .posterior import (
    NUTS_FIELDS,
    PosteriorDraws,
    check_draw_counts,
    fit_guide,
    resolve_chain_method,
    sample_stats,
)

__all__ = ["SHARED_BACKENDS", "run_shared_laplace", "run_shared_nuts", "run_shared_vi"]


def _whitened_model(
    centre,
    factor,
    eta,
    jacobian,
    precision,
    y,
    prior_mean,
    noise_scale,
    *,
    family: str,
    **extras,
):
    """The target in whitened coordinates u, with the shared parts ``centre + factor @ u``.

    Module-level, with the data as arguments, so that one compiled sampler
    serves every target of the same shapes (see :func:`_nuts_chain`).
    ``noise_scale`` None: sampled where the family has one; ``extras`` are
    the likelihood's other arguments (:func:`bayes_prsn.evidence.likelihood_extras`).
    """
    import numpyro.distributions as dist
    from numpyro.distributions import constraints

    u = numpyro.sample(
        "whitened", dist.ImproperUniform(constraints.real, (), event_shape=(centre.shape[0],))
    )
    with numpyro.handlers.condition(data={"shared": centre + factor @ u}):
        linearised_glm(
            eta,
            jacobian,
            centre,
            precision,
            y,
            family=family,
            noise_scale=noise_scale,
            prior_mean=prior_mean,
            **extras,
        )


def _whitened(target: SharedTarget, *, sample_noise: bool):
    """The arguments of :func:`_whitened_model`, the centre (the MAP) and the Cholesky factor."""
    centre = jnp.asarray(flatten(target.sites, target.shapes), dtype=jnp.float32)
    factor = jnp.asarray(np.linalg.cholesky(target.covariance), dtype=jnp.float32)
    arguments = {
        "centre": centre,
        "factor": factor,
        "eta": jnp.asarray(target.eta, dtype=jnp.float32),
        "jacobian": jnp.asarray(target.jacobian, dtype=jnp.float32),
        "precision": jnp.asarray(
            precision_vector(target.precisions, target.shapes), dtype=jnp.float32
        ),
        "y": jnp.asarray(target.y, dtype=jnp.float32),
        "prior_mean": None
        if target.prior_mean is None
        else jnp.asarray(target.prior_mean, dtype=jnp.float32),
        # None: sampled (``sample_noise``), or a family without a noise scale.
        "noise_scale": None
        if sample_noise or target.noise_scale is None
        else jnp.float32(target.noise_scale),
    }
    for name, value in (target.extras or {}).items():
        arguments[name] = jnp.asarray(value, dtype=jnp.float32)
    return arguments, centre, factor


@functools.lru_cache(maxsize=4)
def _nuts_chain(family: str, settings: tuple):
    """A NUTS kernel for the whitened target of ``family`` and its compiled chain.

    ``chain(state, arguments)`` runs ``num_warmup`` adapting steps from the
    kernel's initial state, then ``num_samples`` steps keeping every
    ``thinning``-th (as NumPyro's MCMC does), and returns the kept draws
    (constrained) and their statistics. The data are arguments of the
    compiled program, and the kernel and program are cached by ``settings``,
    so a second target of the same shapes (another data set, the replicates
    of a calibration check, the chains after the first) runs without
    compiling again; NumPyro's MCMC compiles its loop on every run (about
    1-3 s here). The kernel keeps the data of its last initialisation, so
    initialise one chain at a time; the compiled chain holds no Python state,
    and chains run side by side on threads (:func:`_run_chains`).
    """
    from numpyro.infer import NUTS

    s = dict(settings)
    kernel = NUTS(
        functools.partial(_whitened_model, family=family),
        target_accept_prob=s["target_accept_prob"],
        max_tree_depth=s["max_tree_depth"],
    )
    thinning = s["thinning"]
    kept, skipped = divmod(s["num_samples"], thinning)

    def advance(state, arguments, steps):
        def step(state, _):
            return kernel.sample(state, (), arguments), None

        return jax.lax.scan(step, state, None, length=steps)[0]

    def draw(arguments, state, _):
        state = advance(state, arguments, thinning)
        fields = {name: operator.attrgetter(name)(state) for name in NUTS_FIELDS}
        return state, (state.z, fields)

    def chain(state, arguments):
        state = advance(state, arguments, s["num_warmup"] + skipped)
        _, (z, fields) = jax.lax.scan(functools.partial(draw, arguments), state, None, kept)
        return jax.vmap(kernel.postprocess_fn((), arguments))(z), fields

    def init(key, params, arguments):
        return kernel.init(key, s["num_warmup"], init_params=params, model_kwargs=arguments)

    compiled = {
        # One program instead of the 150-odd eager operations of NumPyro's
        # initialisation, each compiled on a process's first call (7-8 s of a
        # 20-24 s first posterior at N = 200). The kernel's functions, set
        # while tracing, take the data as arguments and hold none of it (the
        # step-size heuristic, whose closure would, is off in NUTS' defaults).
        "init": jax.jit(init),
        "sequential": jax.jit(chain),
        "vectorized": jax.jit(jax.vmap(chain, in_axes=(0, None))),
        "parallel": jax.pmap(chain, in_axes=(0, None)),
    }
    return kernel, compiled


def _run_chains(
    family: str, settings: dict, key, starts: dict, arguments: dict, progress_bar, threads=1
):
    """Draws and statistics (chain, draw, ...) of ``num_chains`` chains from ``starts``.

    Each chain's key and initial state are NumPyro MCMC's (the state to float32
    rounding: its initialisation is compiled); ``chain_method``
    as MCMC's: ``"sequential"`` runs the compiled chain once per chain, on up
    to ``threads`` threads side by side (the same program and inputs, so the
    same draws as one after another), ``"vectorized"`` maps it over the
    chains, ``"parallel"`` over devices. ``progress_bar``: a bar that counts
    the chains done.
    """
    num_chains, chain_method = settings["num_chains"], settings["chain_method"]
    static = ("num_warmup", "num_samples", "thinning", "target_accept_prob", "max_tree_depth")
    kernel, compiled = _nuts_chain(family, tuple((name, settings[name]) for name in static))
    keys = jax.random.split(key, num_chains) if num_chains > 1 else key[None]
    states = [
        compiled["init"](keys[c], {name: value[c] for name, value in starts.items()}, arguments)
        for c in range(num_chains)
    ]
    bar = None
    if progress_bar:
        from tqdm.auto import tqdm

        bar = tqdm(total=num_chains, desc=f"NUTS ({chain_method})", unit="chain")
    try:
        if chain_method == "sequential" or num_chains == 1:
            with TRACE_LOCK:  # traced (NumPyro's handlers) and compiled once, by one thread
                program = compiled["sequential"].lower(states[0], arguments).compile()

            def run(state, cancel):
                # One compiled program per chain: it cannot stop half-way (``cancel``).
                draws = jax.tree.map(np.asarray, program(state, arguments))
                if bar is not None:
                    bar.update(1)
                return draws

            runs = run_in_threads(run, states, threads)
            return jax.tree.map(lambda *chains: np.stack(chains), *runs)
        stacked = jax.tree.map(lambda *chains: jnp.stack(chains), *states)
        runs = jax.tree.map(np.asarray, compiled[chain_method](stacked, arguments))
        if bar is not None:
            bar.update(num_chains)
        return runs
    finally:
        if bar is not None:
            bar.close()


def _flat_draws(centre, factor, whitened) -> np.ndarray:
    """The flat shared parts (chain, draw, D) of whitened draws (chain, draw, D)."""
    return np.asarray(centre)[None, None] + np.einsum("cdj,ij->cdi", whitened, np.asarray(factor))


def _samples_noise(target: SharedTarget) -> bool:
    """Whether NUTS and VI sample the noise scale (gaussian; student_t's stays the fit's)."""
    likelihood = family(target.family)
    return (
        likelihood.has_noise_scale and not likelihood.parameters and target.noise_scale is not None
    )


def run_shared_laplace(
    rng_key, target: SharedTarget, *, num_samples: int = 1000, progress_bar: bool = False
):
    """Independent draws of the Gaussian approximation (noise scale at its learned value).

    ``progress_bar`` is accepted like the other back-ends' (the draws take a moment).
    """
    check_draw_counts(num_samples=num_samples)
    start = time.perf_counter()
    _, centre, factor = _whitened(target, sample_noise=False)
    whitened = np.asarray(jax.random.normal(rng_key, (1, num_samples, centre.shape[0])))
    return PosteriorDraws(
        {"shared": _flat_draws(centre, factor, whitened)},
        {},
        "laplace",
        time.perf_counter() - start,
        {"dimension": int(centre.shape[0])},
    )


def run_shared_nuts(
    rng_key,
    target: SharedTarget,
    *,
    num_warmup: int = 1000,
    num_samples: int = 2000,
    num_chains: int = 4,
    chain_method: str | None = None,
    target_accept_prob: float = 0.8,
    max_tree_depth: int = 10,
    init_jitter: float = 0.5,
    thinning: int = 1,
    progress_bar: bool = False,
    threads: int = 1,
) -> PosteriorDraws:
    """NUTS on the whitened target; chain 0 starts at the MAP, the others ``init_jitter`` away.

    ``threads``: sequential chains side by side on this many threads (:func:`_run_chains`).
    """
    check_draw_counts(num_warmup=num_warmup, num_samples=num_samples, num_chains=num_chains)
    chain_method = resolve_chain_method(chain_method, num_chains)
    start = time.perf_counter()
    sample_noise = _samples_noise(target)
    arguments, centre, factor = _whitened(target, sample_noise=sample_noise)
    settings = {
        "num_warmup": num_warmup,
        "num_samples": num_samples,
        "num_chains": num_chains,
        "chain_method": chain_method,
        "thinning": thinning,
        "target_accept_prob": target_accept_prob,
        "max_tree_depth": max_tree_depth,
    }
    key_init, key_run = jax.random.split(rng_key)
    keys = jax.random.split(key_init, 2)
    jitter = init_jitter * jax.random.normal(keys[0], (num_chains, centre.shape[0]))
    starts = {"whitened": jitter.at[0].set(0.0)}
    if sample_noise:
        # Unconstrained (log) noise scale, around the learned value.
        noise = np.log(target.noise_scale) + 0.1 * init_jitter * jax.random.normal(
            keys[1], (num_chains,)
        )
        starts["noise_scale"] = noise.at[0].set(np.log(target.noise_scale))
    raw, extra = _run_chains(
        target.family, settings, key_run, starts, arguments, progress_bar, threads
    )
    samples = {"shared": _flat_draws(centre, factor, raw["whitened"])}
    if sample_noise:
        samples["noise_scale"] = raw["noise_scale"]
    return PosteriorDraws(
        samples,
        sample_stats(extra),
        "nuts",
        time.perf_counter() - start,
        {"chain_method": chain_method, "num_warmup": num_warmup},
    )


def run_shared_vi(
    rng_key,
    target: SharedTarget,
    *,
    num_samples: int = 1000,
    num_steps: int = 2000,
    guide_rank: int = 8,
    step_size: float = 0.01,
    chunk_size: int = 250,
    progress_bar: bool = False,
) -> PosteriorDraws:
    """A Gaussian guide in whitened coordinates, started at the Laplace approximation."""
    from numpyro.infer import init_to_value
    from numpyro.infer.autoguide import AutoLowRankMultivariateNormal

    check_draw_counts(num_samples=num_samples, num_steps=num_steps, chunk_size=chunk_size)
    if isinstance(guide_rank, bool) or not isinstance(guide_rank, int) or guide_rank < 1:
        raise ValueError(f"guide_rank must be an integer >= 1; got {guide_rank!r}.")
    start = time.perf_counter()
    sample_noise = _samples_noise(target)
    arguments, centre, factor = _whitened(target, sample_noise=sample_noise)
    model = functools.partial(_whitened_model, family=target.family, **arguments)
    values = {"whitened": jnp.zeros(centre.shape[0])}
    if sample_noise:
        values["noise_scale"] = jnp.float32(target.noise_scale)
    guide = AutoLowRankMultivariateNormal(
        model, init_loc_fn=init_to_value(values=values), rank=guide_rank, init_scale=1.0
    )
    params, losses, key_draw = fit_guide(
        rng_key,
        model,
        guide,
        {},
        num_steps=num_steps,
        step_size=step_size,
        chunk_size=chunk_size,
        progress_bar=progress_bar,
    )
    drawn = guide.sample_posterior(key_draw, params, sample_shape=(num_samples,))
    samples = {"shared": _flat_draws(centre, factor, np.asarray(drawn["whitened"])[None])}
    if sample_noise:
        samples["noise_scale"] = np.asarray(drawn["noise_scale"])[None]
    return PosteriorDraws(
        samples,
        {},
        "vi",
        time.perf_counter() - start,
        {"losses": losses, "guide_rank": guide_rank, "num_steps": len(losses)},
    )


#: The back-ends of the shared target by ``method`` name.
SHARED_BACKENDS = {"nuts": run_shared_nuts, "laplace": run_shared_laplace, "vi": run_shared_vi}
