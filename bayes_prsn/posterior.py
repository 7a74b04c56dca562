r"""Posterior back-ends: NUTS, a Laplace approximation and variational inference.

All three sample the same target, the joint density of
:func:`bayes_prsn.models.personalized_regression` with some sites held fixed
(``fixed_values``, through :func:`numpyro.handlers.condition`). The estimator
fixes the dictionary :math:`Q` and the shared offset :math:`\bar\theta` at
their MAP values, which removes the rotation non-identifiability
:math:`(Z, Q) \to (Z R, R^{-1} Q)` of the low-rank product: given :math:`Q`,
:math:`\theta_i = \bar\theta + Q^\top Z_i` is a linear, one-to-one function of
:math:`Z_i` (for full-rank :math:`Q`), so the sampled codes :math:`Z` and
covariate weights :math:`\phi` are identified.

Each back-end is ``run_<method>(rng_key, model_kwargs, init_values,
fixed_values, *, family, rank, prior, offset, ...)`` and returns
:class:`PosteriorDraws`, draws shaped ``(chain, draw, ...)``.
"""

from __future__ import annotations

import functools
import time
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import numpyro

from .models import personalized_regression
from .svi import SortedTraceELBO, run_chunks

__all__ = [
    "METHODS",
    "NUTS_FIELDS",
    "PosteriorDraws",
    "HVP_BATCH",
    "check_draw_counts",
    "dense_hessian",
    "fit_guide",
    "resolve_chain_method",
    "run_mcmc",
    "run_nuts",
    "run_laplace",
    "run_vi",
    "sample_stats",
]

#: Names accepted by ``sample_posterior(method=...)``.
METHODS = ("nuts", "laplace", "vi")


class PosteriorDraws(NamedTuple):
    """Draws from a posterior back-end.

    Attributes
    ----------
    samples : dict of str -> ndarray
        Draws of each sampled site, shaped ``(chain, draw, *site_shape)``
        (constrained space).
    sample_stats : dict of str -> ndarray
        Per-draw sampler statistics shaped ``(chain, draw)`` with ArviZ names
        (``diverging``, ``lp``, ``acceptance_rate``, ``n_steps``,
        ``tree_depth``, ``energy``, ``step_size``); empty for approximations.
    method : str
        The back-end that made the draws.
    seconds : float
        Wall time of the back-end (compilation included).
    info : dict
        Back-end details (chain method, final ELBO, Laplace dimension, ...).
    """

    samples: dict
    sample_stats: dict
    method: str
    seconds: float
    info: dict


def _model(fixed_values: dict, *, family: str, rank: int, prior: str, offset: bool):
    model = functools.partial(
        personalized_regression, family=family, rank=rank, prior=prior, offset=offset
    )
    fixed = {name: jnp.asarray(value) for name, value in fixed_values.items()}
    return numpyro.handlers.condition(model, data=fixed)


def _as_jax(model_kwargs: dict) -> dict:
    return {
        k: (jnp.asarray(v) if isinstance(v, np.ndarray) else v) for k, v in model_kwargs.items()
    }


def _target(model_kwargs: dict, init_values: dict, fixed_values: dict, **static) -> tuple:
    """The conditioned model, its arguments as JAX arrays and the starting point of its sites."""
    model = _model(fixed_values, **static)
    init = {k: jnp.asarray(v) for k, v in init_values.items() if k not in fixed_values}
    return model, _as_jax(model_kwargs), init


def check_draw_counts(**counts) -> None:
    for name, value in counts.items():
        if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
            raise ValueError(f"{name} must be an integer >= 1; got {value!r}.")


def _jittered_starts(model, model_kwargs, init_values, num_chains, scale, rng_key) -> dict:
    """Per-chain starting points near ``init_values``, in the unconstrained space."""
    from numpyro.infer.util import unconstrain_fn

    unconstrained = unconstrain_fn(model, (), model_kwargs, init_values)
    keys = jax.random.split(rng_key, len(unconstrained))
    starts = {}
    for key, (name, value) in zip(keys, sorted(unconstrained.items()), strict=True):
        value = jnp.asarray(value)
        spread = scale * jnp.maximum(jnp.std(value), 1e-3) if value.size > 1 else scale
        noise = jax.random.normal(key, (num_chains, *value.shape))
        # Chain 0 starts exactly at the given point; the others near it.
        noise = noise.at[0].set(0.0)
        starts[name] = value + spread * noise
    return starts


def _shifted(model, rank: int):
    r"""The same target with the codes written as :math:`Z = C - \bar C + t`.

    The distance-matching potential only sees differences of codes, so a
    common shift of all codes (equivalent to moving the offset along the
    rows of :math:`Q`) is pinned only jointly by every sample's likelihood.
    With a diagonal mass matrix NUTS moves that collective direction slowly
    (bulk ESS of the mean code about 40 from 8000 draws, R-hat 1.08, in a
    test run). Here the shift :math:`t` is its own site (dense mass) and the
    centred codes :math:`C` carry an improper flat density whose redundant
    mean is pinned by :math:`N(0, 1/N)`; the map to :math:`Z` is linear, so
    the density of :math:`Z` is the model's, times a :math:`N(0, 10^2)` on
    :math:`t` (negligible against the code prior).
    """
    import numpyro.distributions as dist
    from numpyro.distributions import constraints

    def shifted_model(**kwargs):
        n_samples = kwargs["X"].shape[0]
        shift = numpyro.sample("code_shift", dist.Normal(0.0, 10.0).expand([rank]).to_event(1))
        centred = numpyro.sample(
            "code_centred",
            dist.ImproperUniform(constraints.real, (), event_shape=(n_samples, rank)),
        )
        mean = centred.mean(axis=0)
        numpyro.factor("code_centred_mean", -0.5 * n_samples * jnp.sum(mean**2))
        with numpyro.handlers.condition(data={"embedding": centred - mean + shift}):
            model(**kwargs)

    return shifted_model


def run_nuts(
    rng_key,
    model_kwargs: dict,
    init_values: dict,
    fixed_values: dict,
    *,
    family: str,
    rank: int,
    prior: str = "normal",
    offset: bool = True,
    num_warmup: int = 1000,
    num_samples: int = 1000,
    num_chains: int = 4,
    chain_method: str | None = None,
    target_accept_prob: float = 0.8,
    max_tree_depth: int = 10,
    dense_mass_sites: tuple = ("covariate_weights",),
    init_jitter: float = 0.05,
    separate_shift: bool = True,
    thinning: int = 1,
    progress_bar: bool = False,
) -> PosteriorDraws:
    """NUTS over the sites not in ``fixed_values``, every chain started near the MAP.

    The mass matrix is diagonal for the codes and dense for the few global
    sites named in ``dense_mass_sites`` (when they are sampled).

    Parameters
    ----------
    rng_key : jax.random.PRNGKey
    model_kwargs : dict
        Arguments of the model (data and settings).
    init_values : dict
        The MAP value of every sampled site (constrained space).
    fixed_values : dict
        Sites held fixed (conditioned on) and their values.
    family, rank, prior, offset
        Static settings of the model.
    num_warmup, num_samples, num_chains : int
        Warm-up iterations, draws per chain and chains.
    chain_method : {"parallel", "sequential", "vectorized"} or None
        How chains run; ``None`` runs them in parallel when JAX has a device
        per chain (for example after ``numpyro.set_host_device_count``) and one
        after another otherwise.
    target_accept_prob, max_tree_depth
        NUTS settings.
    init_jitter : float
        Chains other than the first start at the MAP plus this much Gaussian
        noise (relative to the spread of each site) in the unconstrained
        space, so that R-hat can see chains that do not meet.
    separate_shift : bool
        Sample the codes as a common shift plus centred codes (see
        :func:`_shifted`); the density of the codes is unchanged.
    progress_bar : bool
        Show NumPyro's progress bar.
    """
    from numpyro.infer import NUTS

    check_draw_counts(num_warmup=num_warmup, num_samples=num_samples, num_chains=num_chains)
    chain_method = resolve_chain_method(chain_method, num_chains)
    start = time.perf_counter()
    static = {"family": family, "rank": rank, "prior": prior, "offset": offset}
    model, kwargs, init_values = _target(model_kwargs, init_values, fixed_values, **static)
    shifted = separate_shift and "embedding" in init_values
    if shifted:
        model = _shifted(model, rank)
        codes = init_values.pop("embedding")
        init_values["code_shift"] = codes.mean(axis=0)
        init_values["code_centred"] = codes - codes.mean(axis=0)
        dense_mass_sites = (*dense_mass_sites, "code_shift")
    dense = tuple(site for site in dense_mass_sites if site in init_values)
    kernel = NUTS(
        model,
        dense_mass=[dense] if dense else False,
        target_accept_prob=target_accept_prob,
        max_tree_depth=max_tree_depth,
    )
    key_init, key_run = jax.random.split(rng_key)
    starts = _jittered_starts(model, kwargs, init_values, num_chains, init_jitter, key_init)
    mcmc = run_mcmc(
        kernel,
        key_run,
        starts,
        kwargs,
        num_warmup=num_warmup,
        num_samples=num_samples,
        num_chains=num_chains,
        chain_method=chain_method,
        thinning=thinning,
        progress_bar=progress_bar,
    )
    samples = {
        name: np.asarray(value) for name, value in mcmc.get_samples(group_by_chain=True).items()
    }
    if shifted:
        centred = samples.pop("code_centred")
        shift = samples.pop("code_shift")
        samples["embedding"] = centred - centred.mean(axis=2, keepdims=True) + shift[:, :, None]
    return PosteriorDraws(
        samples,
        sample_stats(mcmc.get_extra_fields(group_by_chain=True)),
        "nuts",
        time.perf_counter() - start,
        {"chain_method": chain_method, "num_warmup": num_warmup},
    )


def resolve_chain_method(chain_method: str | None, num_chains: int) -> str:
    """``chain_method`` checked; None: parallel with a device per chain, else sequential."""
    if chain_method is None:
        chain_method = "parallel" if jax.local_device_count() >= num_chains else "sequential"
    if chain_method not in ("parallel", "sequential", "vectorized"):
        raise ValueError(
            "chain_method must be 'parallel', 'sequential', 'vectorized' or None; "
            f"got {chain_method!r}."
        )
    return chain_method


#: The fields of NumPyro's HMC state kept for every NUTS draw (read by :func:`sample_stats`).
NUTS_FIELDS = (
    "diverging",
    "num_steps",
    "accept_prob",
    "energy",
    "potential_energy",
    "adapt_state.step_size",
)


def run_mcmc(kernel, rng_key, starts: dict, kwargs: dict, *, num_chains: int, **settings):
    """Run NumPyro's MCMC with ``kernel`` from ``starts`` (one row per chain).

    ``settings`` are MCMC's (``num_warmup``, ``num_samples``,
    ``chain_method``, ``thinning``, ``progress_bar``); the statistics that
    :func:`sample_stats` reads are kept. Returns the MCMC object.
    """
    from numpyro.infer import MCMC

    mcmc = MCMC(kernel, num_chains=num_chains, **settings)
    if num_chains == 1:
        starts = {name: value[0] for name, value in starts.items()}
    mcmc.run(rng_key, init_params=starts, extra_fields=NUTS_FIELDS, **kwargs)
    return mcmc


def sample_stats(extra: dict) -> dict:
    """NUTS statistics of every draw, under ArviZ's names.

    ``extra``: the :data:`NUTS_FIELDS` of every draw, shaped (chain, draw)
    (NumPyro's ``MCMC.get_extra_fields(group_by_chain=True)`` after
    :func:`run_mcmc`).
    """
    extra = {k: np.asarray(v) for k, v in extra.items()}
    n_steps = extra["num_steps"].astype(np.int64)
    return {
        "diverging": extra["diverging"].astype(bool),
        "lp": -extra["potential_energy"],
        "acceptance_rate": extra["accept_prob"],
        "n_steps": n_steps,
        "tree_depth": np.floor(np.log2(np.maximum(n_steps, 1))).astype(np.int64) + 1,
        "energy": extra["energy"],
        "step_size": extra["adapt_state.step_size"],
    }


def _colour_classes(pairs: np.ndarray, n_samples: int) -> np.ndarray:
    """Greedy colouring of the pair graph: no pair joins two samples of one colour."""
    from scipy.sparse import coo_matrix

    pairs = np.asarray(pairs)
    graph = coo_matrix(
        (
            np.ones(2 * len(pairs)),
            (np.r_[pairs[:, 0], pairs[:, 1]], np.r_[pairs[:, 1], pairs[:, 0]]),
        ),
        shape=(n_samples, n_samples),
    ).tocsr()
    colours = np.full(n_samples, -1)
    for node in np.argsort(-np.diff(graph.indptr), kind="stable"):
        taken = colours[graph.indices[graph.indptr[node] : graph.indptr[node + 1]]]
        taken = np.unique(taken[taken >= 0])
        free = np.flatnonzero(np.isin(np.arange(taken.size + 1), taken, invert=True))
        colours[node] = free[0]
    return colours


def _block_hessian(potential, point, unravel, names, n_samples, rank, pairs):
    """Per-sample (rank x rank) Hessian blocks of the codes and the dense block of the rest.

    Samples of one colour share no pair, so one Hessian-vector product with
    a direction on all of them at once reads off each one's own block.
    """
    from jax.flatten_util import ravel_pytree

    colours = _colour_classes(pairs, n_samples)
    n_colours = int(colours.max()) + 1
    template = jax.tree_util.tree_map(jnp.zeros_like, unravel(point))
    directions = []
    for colour in range(n_colours):
        for k in range(rank):
            tangent = dict(template)
            tangent["embedding"] = (
                jnp.zeros((n_samples, rank)).at[:, k].set(jnp.asarray(colours == colour, float))
            )
            directions.append(ravel_pytree(tangent)[0])
    others = [name for name in names if name != "embedding"]
    offsets = {}
    start = 0
    for name in sorted(template):
        size = int(np.prod(template[name].shape))
        offsets[name] = (start, start + size)
        start += size
    other_index = np.concatenate(
        [np.arange(*offsets[name]) for name in others] or [np.zeros(0, int)]
    ).astype(int)
    for index in other_index:
        directions.append(jnp.zeros(point.shape[0]).at[index].set(1.0))
    directions = jnp.stack(directions)

    hvp = _hessian_vector_product(potential, point)
    products = jax.lax.map(hvp, directions, batch_size=HVP_BATCH)
    _check_products(jax.jit(hvp), directions, products)
    begin, end = offsets["embedding"]
    code_rows = products[: n_colours * rank, begin:end].reshape(n_colours, rank, n_samples, rank)
    # blocks[i, a, b] = d^2 U / dZ_ia dZ_ib, from the direction of i's colour along b.
    blocks = code_rows[colours, :, np.arange(n_samples), :]
    blocks = jnp.swapaxes(blocks, 1, 2)
    other_block = products[n_colours * rank :][:, other_index]
    return blocks, other_block, other_index, offsets


def _soft_abs_draws(key, hessian, num_samples):
    """Zero-mean draws with covariance V |Lambda|^{-1} V^T for a symmetric ``hessian``.

    Negative eigenvalues (the non-convex distance-matching term gives them
    where two codes nearly coincide) are reflected, as in the "SoftAbs"
    metric (Betancourt, 2013), so each direction keeps its local curvature's
    magnitude; tiny ones are floored.
    """
    hessian = 0.5 * (hessian + jnp.swapaxes(hessian, -1, -2))
    eigenvalues, eigenvectors = jnp.linalg.eigh(hessian)
    floor = 1e-6 * jnp.max(jnp.abs(eigenvalues), axis=-1, keepdims=True)
    magnitudes = jnp.maximum(jnp.abs(eigenvalues), floor)
    noise = jax.random.normal(key, (num_samples, *eigenvalues.shape))
    draws = jnp.einsum("...ij,s...j->s...i", eigenvectors, noise / jnp.sqrt(magnitudes))
    return draws, int(jnp.sum(eigenvalues < 0))


#: Hessian-vector products are evaluated one after another (``jax.lax.map`` without a
#: ``batch_size``). Batched, they can come out wrong: with jax/jaxlib 0.10.2 on the CPU,
#: ``jax.jit(jax.hessian(potential))`` of the code target (120 samples, rank 3, 362
#: unknowns) gave entries up to 320 where eager evaluation and finite differences give
#: 0 to 0.11; ``jax.lax.map`` of the products was exact in batches of 64 there and wrong
#: in batches of 64 at 200 samples (602 unknowns), exact in batches of 32. The smallest
#: case found: the Hessian of ``sum((y - sum(X * theta, axis=1)) ** 2)`` with
#: ``theta = offset + Z @ Q``, batched over 64 directions (the einsum form is exact).
#: :func:`dense_hessian` and :func:`_block_hessian` also check their products.
HVP_BATCH = None


def dense_hessian(potential, point):
    """The Hessian of ``potential`` at ``point``, column by column from Hessian-vector products.

    Computed as ``jax.lax.map`` of forward-over-reverse products, one direction
    after another (:data:`HVP_BATCH`; one compiled program), then checked against
    two products along random directions computed on their own: a mismatch
    raises instead of returning a wrong Hessian.
    """
    dimension = point.shape[0]
    hvp = _hessian_vector_product(potential, point)
    columns = jax.jit(lambda basis: jax.lax.map(hvp, basis, batch_size=HVP_BATCH))
    hessian = columns(jnp.eye(dimension, dtype=point.dtype))
    probes = jax.random.normal(jax.random.PRNGKey(0), (2, dimension), dtype=point.dtype)
    _check_products(jax.jit(hvp), probes, probes @ hessian.T)
    return hessian


def _hessian_vector_product(potential, point):
    """``direction -> H direction``, the Hessian of ``potential`` at ``point`` (forward over
    reverse)."""

    def hvp(direction):
        return jax.jvp(jax.grad(potential), (point,), (direction,))[1]

    return hvp


def _check_products(hvp, directions, products) -> None:
    """Raise if the first two ``products`` differ from ``hvp`` of their ``directions``."""
    for direction, got in zip(directions[:2], products[:2], strict=False):
        expected = np.asarray(hvp(direction))
        difference = np.max(np.abs(np.asarray(got) - expected))
        if difference > 1e-3 * (np.max(np.abs(expected)) + 1.0):
            raise FloatingPointError(
                "the Hessian disagrees with a Hessian-vector product (max difference "
                f"{difference:.3g}); use method='nuts'."
            )


def _check_finite_hessian(*blocks) -> None:
    if not all(bool(jnp.all(jnp.isfinite(block))) for block in blocks):
        raise FloatingPointError(
            "the Hessian of the negative log-density is not finite at the MAP; use method='nuts'."
        )


def _block_draws(rng_key, potential, flat, unravel, unconstrained, rank, pairs, num_samples):
    """Draws of the block Laplace approximation (see :func:`run_laplace`) and its negative
    eigenvalues: each code block given its neighbours at the MAP, the global sites apart."""
    if "embedding" not in unconstrained:
        raise ValueError("structure='block' needs the codes ('embedding') to be sampled.")
    n_samples = unconstrained["embedding"].shape[0]
    blocks, other_block, other_index, offsets = _block_hessian(
        potential, flat, unravel, sorted(unconstrained), n_samples, rank, np.asarray(pairs)
    )
    _check_finite_hessian(blocks, other_block)
    key_codes, key_other = jax.random.split(rng_key)
    code_steps, n_negative = _soft_abs_draws(key_codes, blocks, num_samples)
    draws = jnp.tile(flat, (num_samples, 1))
    begin, end = offsets["embedding"]
    draws = draws.at[:, begin:end].add(code_steps.reshape(num_samples, -1))
    if other_index.size:
        other_steps, negative_other = _soft_abs_draws(key_other, other_block, num_samples)
        draws = draws.at[:, other_index].add(other_steps)
        n_negative += negative_other
    return draws, n_negative


def run_laplace(
    rng_key,
    model_kwargs: dict,
    init_values: dict,
    fixed_values: dict,
    *,
    family: str,
    rank: int,
    prior: str = "normal",
    offset: bool = True,
    num_samples: int = 1000,
    structure: str = "auto",
    max_dimension: int = 4000,
    progress_bar: bool = False,
) -> PosteriorDraws:
    r"""Gaussian (Laplace) approximation at the MAP point.

    The draws come from a Gaussian centred at ``init_values`` (the MAP) in
    the unconstrained space, with covariance the inverse Hessian of the
    negative log-density there, mapped back to the constrained space.

    ``structure="dense"`` uses the full Hessian (``d^2`` entries for ``d``
    unknowns). ``structure="block"`` keeps each sample's (rank x rank) block
    of the codes and the block of the global sites and drops the coupling
    between them, so each sample's code is drawn from its conditional given
    its neighbours at the MAP: cost O(n_samples * n_neighbors), but it
    understates the spread that comes from the neighbours' own uncertainty.
    ``"auto"`` is dense up to ``max_dimension`` unknowns and block beyond.

    The distance-matching term is not convex, so the Hessian may have
    negative eigenvalues; they are reflected (their magnitude is kept) and
    their number is reported in ``info["negative_eigenvalues"]``.
    """
    from jax.flatten_util import ravel_pytree
    from numpyro.infer.util import constrain_fn, potential_energy, unconstrain_fn

    check_draw_counts(num_samples=num_samples)
    if structure not in ("auto", "dense", "block"):
        raise ValueError(f"structure must be 'auto', 'dense' or 'block'; got {structure!r}.")
    start = time.perf_counter()
    static = {"family": family, "rank": rank, "prior": prior, "offset": offset}
    model, kwargs, init_values = _target(model_kwargs, init_values, fixed_values, **static)
    unconstrained = unconstrain_fn(model, (), kwargs, init_values)
    flat, unravel = ravel_pytree(unconstrained)
    dimension = flat.shape[0]
    if structure == "auto":
        structure = "dense" if dimension <= max_dimension else "block"

    def potential(x):
        return potential_energy(model, (), kwargs, unravel(x))

    if structure == "dense":
        hessian = dense_hessian(potential, flat)
        _check_finite_hessian(hessian)
        steps, n_negative = _soft_abs_draws(rng_key, hessian, num_samples)
        draws = flat + steps
    else:
        draws, n_negative = _block_draws(
            rng_key,
            potential,
            flat,
            unravel,
            unconstrained,
            rank,
            model_kwargs["pairs"],
            num_samples,
        )

    @jax.jit
    def constrain(x):
        return constrain_fn(model, (), kwargs, unravel(x))

    samples = jax.lax.map(constrain, draws, batch_size=256)
    samples = {name: np.asarray(value)[None] for name, value in samples.items()}
    return PosteriorDraws(
        samples,
        {},
        "laplace",
        time.perf_counter() - start,
        {"dimension": int(dimension), "structure": structure, "negative_eigenvalues": n_negative},
    )


def fit_guide(
    rng_key,
    model,
    guide,
    kwargs: dict,
    *,
    num_steps: int,
    step_size: float,
    chunk_size: int,
    progress_bar: bool,
):
    """SVI of ``guide`` to ``model`` (Adam, step size decaying to 1%), in compiled chunks.

    Returns the guide's parameters, the ELBO losses and the key left for
    drawing from the guide. Raises when the ELBO is not finite at the end.
    """
    from numpyro.infer import SVI

    # The step size decays to 1% of its start: with a constant one, Adam's
    # per-coordinate steps keep the means jittering around the optimum.
    total = float(num_steps)

    def schedule(step):
        return step_size * 0.01 ** jnp.minimum(step / total, 1.0)

    svi = SVI(model, guide, numpyro.optim.ClippedAdam(schedule), SortedTraceELBO())
    key_init, key_draw = jax.random.split(rng_key)
    state = svi.init(key_init, **kwargs)

    @jax.jit
    def run_chunk(state):
        def body(carry, _):
            return svi.stable_update(carry, **kwargs)

        return jax.lax.scan(body, state, None, length=chunk_size)

    state, losses, _ = run_chunks(
        lambda state, index: run_chunk(state),
        state,
        max_steps=num_steps,
        chunk_size=chunk_size,
        progress_bar=progress_bar,
        description="posterior (VI)",
        label="elbo_loss",
    )
    if not np.isfinite(losses[-chunk_size:]).any():
        raise FloatingPointError(
            "the ELBO was not finite at the end of variational inference; try a smaller "
            "step_size or method='laplace'."
        )
    return svi.get_params(state), losses, key_draw


def run_vi(
    rng_key,
    model_kwargs: dict,
    init_values: dict,
    fixed_values: dict,
    *,
    family: str,
    rank: int,
    prior: str = "normal",
    offset: bool = True,
    num_samples: int = 1000,
    num_steps: int = 2000,
    guide_rank: int = 8,
    step_size: float = 0.01,
    chunk_size: int = 250,
    progress_bar: bool = False,
) -> PosteriorDraws:
    """Variational Gaussian approximation fitted by SVI, started at the MAP.

    The guide is a multivariate normal in the unconstrained space with a
    low-rank-plus-diagonal covariance (``guide_rank`` factors; 0 gives a
    mean-field guide), its mean started at ``init_values``. Each step costs
    O(n_samples * (n_neighbors + rank + guide_rank)), so this scales to large
    N. Like all such guides it tends to understate the spread of strongly
    coupled codes.
    """
    from numpyro.infer import init_to_value
    from numpyro.infer.autoguide import AutoLowRankMultivariateNormal, AutoNormal

    check_draw_counts(num_samples=num_samples, num_steps=num_steps, chunk_size=chunk_size)
    if isinstance(guide_rank, bool) or not isinstance(guide_rank, int) or guide_rank < 0:
        raise ValueError(f"guide_rank must be an integer >= 0; got {guide_rank!r}.")
    start = time.perf_counter()
    static = {"family": family, "rank": rank, "prior": prior, "offset": offset}
    model, kwargs, init_values = _target(model_kwargs, init_values, fixed_values, **static)
    init = init_to_value(values=init_values)
    if guide_rank > 0:
        guide = AutoLowRankMultivariateNormal(
            model, init_loc_fn=init, rank=guide_rank, init_scale=0.01
        )
    else:
        guide = AutoNormal(model, init_loc_fn=init, init_scale=0.01)
    params, losses, key_draw = fit_guide(
        rng_key,
        model,
        guide,
        kwargs,
        num_steps=num_steps,
        step_size=step_size,
        chunk_size=chunk_size,
        progress_bar=progress_bar,
    )
    draw = jax.jit(lambda key: guide.sample_posterior(key, params, sample_shape=(num_samples,)))
    samples = {
        name: np.asarray(value)[None]
        for name, value in draw(key_draw).items()
        if name in init_values
    }
    return PosteriorDraws(
        samples,
        {},
        "vi",
        time.perf_counter() - start,
        {"losses": losses, "guide_rank": guide_rank, "num_steps": len(losses)},
    )
