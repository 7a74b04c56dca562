"""MAP inference through SVI with an AutoDelta guide.

:func:`run_svi` is the back-end; the estimator calls it. Steps run in
jit-compiled ``lax.scan`` chunks; between chunks a stopping rule checks the
relative change of the mean loss.
"""

from __future__ import annotations

import functools
import warnings
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
from jax.flatten_util import ravel_pytree
from numpyro.infer import SVI, Trace_ELBO
from numpyro.infer.autoguide import AutoDelta

from .models import personalized_regression, personalized_regression_minibatch

__all__ = ["SVIResult", "run_svi", "shard", "ConvergenceWarning", "NumericalWarning"]


class NumericalWarning(RuntimeWarning):
    """A non-finite loss was met during SVI and the optimisation restarted with smaller steps."""


class ConvergenceWarning(UserWarning):
    """The optimisation stopped at its step cap before the stopping rule was met."""


class SVIResult(NamedTuple):
    """Result of :func:`run_svi`.

    Attributes
    ----------
    params : dict of str -> ndarray
        MAP values of the model's latent sites (constrained space).
    losses : ndarray
        Loss (negative joint log-density) after every step.
    num_steps : int
        Steps taken.
    converged : bool
        Whether the stopping rule was met before ``max_steps``.
    """

    params: dict
    losses: np.ndarray
    num_steps: int
    converged: bool


@functools.lru_cache(maxsize=32)
def _compiled(static: tuple, shapes: tuple, step_size: float, chunk_size: int):
    """SVI object and jit-compiled chunk of steps for one static configuration.

    Cached so that repeated fits with the same static settings (and array
    shapes) reuse the compiled code; everything that may change between fits
    of one configuration (data, gamma, prior scales, masks) is an argument.
    """
    family, rank, prior, offset, encoder_width, batch_sizes = static
    model = functools.partial(
        personalized_regression if batch_sizes is None else personalized_regression_minibatch,
        family=family,
        rank=rank,
        prior=prior,
        offset=offset,
        encoder_width=encoder_width,
    )
    guide = AutoDelta(model)

    # Halve the step every STEP_HALF_LIFE steps (down to 5%): Adam at a fixed
    # step keeps oscillating around the MAP of the encoder's weights.
    def schedule(i):
        return step_size * jnp.maximum(0.05, 0.5 ** (i / STEP_HALF_LIFE))

    optim = numpyro.optim.Adam(schedule)
    svi = SVI(model, guide, optim, Trace_ELBO())
    if batch_sizes is not None:
        return _minibatch_steps(svi, schedule, batch_sizes, encoder_width, chunk_size)

    @jax.jit
    def init(rng_key, init_params, kwargs):
        # Jitted: run eagerly, SVI.init traces the model op by op (seconds).
        state = svi.init(rng_key, init_params=init_params, **kwargs)
        return state, svi.evaluate(state, **kwargs)

    @jax.jit
    def run_chunk(state, kwargs, key):
        def body(carry, step_key):
            return svi.stable_update(carry, **kwargs)

        return jax.lax.scan(body, state, jax.random.split(key, chunk_size))

    return svi, init, run_chunk, svi.get_params


class _MinibatchState(NamedTuple):
    svi: object  # numpyro's SVIState, its optimiser over the shared sites only
    codes: jax.Array  # (N, K) every sample's code (residual)
    m: jax.Array  # Adam's moments of the codes, (N, K)
    v: jax.Array
    count: jax.Array  # (N,) updates each code row has had (its bias correction)


def _minibatch_steps(svi, schedule, batch_sizes, encoder_width, chunk_size):
    """Minibatch steps whose cost does not grow with the number of samples.

    Every step draws ``batch_sizes`` samples and pairs and gathers the codes
    of the samples they touch (M = B + 2 B_p rows at most) into the model's
    code site (the ``positions`` argument of the minibatch model). The shared
    sites take numpyro's Adam step; the gathered code rows take Adam's step
    with their own moments and bias correction (a row's count of updates)
    and are written back. Rows not drawn do not move, so a step costs
    O(B + B_p) and not O(N K) (at N = 1e6 the dense update took 0.12 s of
    every step). A step whose loss or gradient is not finite changes nothing
    and reports a NaN loss, as numpyro's ``stable_update`` does.
    """
    b1, b2, eps = 0.9, 0.999, 1e-8  # numpyro.optim.Adam's defaults
    loc = ("code_residual" if encoder_width else "embedding") + "_auto_loc"

    def draw(key, kwargs):
        """The batch, the site row of each sample it touches, and the codes' rows."""
        key_samples, key_pairs = jax.random.split(key)
        n_samples, n_pairs = kwargs["X"].shape[0], kwargs["pairs"].shape[0]
        batch = jax.random.randint(key_samples, (batch_sizes[0],), 0, n_samples)
        pair_batch = jax.random.randint(key_pairs, (batch_sizes[1],), 0, n_pairs)
        chosen = kwargs["pairs"][pair_batch]
        touched = jnp.concatenate([batch, chosen[:, 0], chosen[:, 1]])
        # Deduplicate by sorting: each sample's site row is its first copy in
        # sorted order; the other copies' rows hold n_samples (out of range:
        # they gather 0 and write nothing back). On CPU a sort of the keys
        # alone and a binary search cost 2 ms at B = B_p = 8192, where
        # jnp.unique with a static size, or a sort that carries the
        # permutation, costs 9 ms.
        ordered = jnp.sort(touched)
        first = jnp.concatenate([jnp.ones(1, bool), ordered[1:] != ordered[:-1]])
        positions = jnp.searchsorted(ordered, touched, side="left")
        rows = jnp.where(first, ordered, n_samples)
        return {"batch": batch, "pair_batch": pair_batch, "positions": positions}, rows

    def gather(values, rows):
        return values.at[rows].get(mode="fill", fill_value=0)

    def get_params(state):
        shared = svi.constrain_fn(svi.optim.get_params(state.svi.optim_state))
        return {**shared, loc: state.codes}

    @jax.jit
    def init(rng_key, init_params, kwargs):
        drawn, rows = draw(rng_key, kwargs)
        codes = jnp.asarray(init_params[loc])
        local = dict(init_params, **{loc: gather(codes, rows)})
        state = svi.init(rng_key, init_params=local, **kwargs, **drawn)
        loss = svi.evaluate(state, **kwargs, **drawn)
        shared = {k: v for k, v in svi.optim.get_params(state.optim_state).items() if k != loc}
        zeros = jnp.zeros_like(codes)
        state = _MinibatchState(
            state._replace(optim_state=svi.optim.init(shared)),
            codes,
            zeros,
            zeros,
            jnp.zeros(codes.shape[0], dtype=jnp.int32),
        )
        return state, loss

    def step(state, kwargs, key):
        drawn, rows = draw(key, kwargs)
        own = gather(state.codes, rows)
        shared = svi.optim.get_params(state.svi.optim_state)
        rng_key, rng_step = jax.random.split(state.svi.rng_key)

        def loss_fn(shared, own):
            params = svi.constrain_fn({**shared, loc: own})
            return svi.loss.loss(rng_step, params, svi.model, svi.guide, **kwargs, **drawn)

        loss, (g_shared, g_own) = jax.value_and_grad(loss_fn, argnums=(0, 1))(shared, own)
        ok = (
            jnp.isfinite(loss)
            & jnp.all(jnp.isfinite(ravel_pytree(g_shared)[0]))
            & jnp.all(jnp.isfinite(g_own))
        )
        i, _ = state.svi.optim_state
        optim_state = jax.lax.cond(
            ok,
            lambda: svi.optim.update(g_shared, state.svi.optim_state),
            lambda: state.svi.optim_state,
        )
        count, m_old, v_old = (gather(x, rows) for x in (state.count, state.m, state.v))
        count = count + 1
        m = b1 * m_old + (1 - b1) * g_own
        v = b2 * v_old + (1 - b2) * g_own**2
        m_hat = m / (1 - b1 ** count[:, None])
        v_hat = v / (1 - b2 ** count[:, None])
        moved = own - schedule(i) * m_hat / (jnp.sqrt(v_hat) + eps)

        def put(values, new, old):
            return values.at[rows].set(jnp.where(ok, new, old), mode="drop")

        new = _MinibatchState(
            state.svi._replace(optim_state=optim_state, rng_key=rng_key),
            put(state.codes, moved, own),
            put(state.m, m, m_old),
            put(state.v, v, v_old),
            put(state.count, count, count - 1),
        )
        return new, jnp.where(ok, loss, jnp.nan)

    @jax.jit
    def run_chunk(state, kwargs, key):
        return jax.lax.scan(
            lambda carry, step_key: step(carry, kwargs, step_key),
            state,
            jax.random.split(key, chunk_size),
        )

    return svi, init, run_chunk, get_params


#: Steps over which the Adam step size halves.
STEP_HALF_LIFE = 1000

#: Model arguments with one row per sample, and with one row per pair.
SAMPLE_ARRAYS = ("X", "y", "likelihood_mask", "covariate_features", "code_mean")
PAIR_ARRAYS = ("pairs", "pair_distances", "pair_weights")
SAMPLE_PARAMS = ("embedding_auto_loc", "code_residual_auto_loc")


def shard(kwargs: dict, params: dict, devices) -> tuple[dict, dict]:
    """Place the model's arrays and parameters on ``devices`` for data-parallel SVI.

    Rows of per-sample arrays (and of the codes) are split across the
    devices when their number divides evenly, rows of pair arrays likewise
    (the pair list is padded to a multiple of 256); everything else is
    replicated. JAX then runs the same jitted step on every device and
    adds up the gradients across them.
    """
    from jax.sharding import Mesh, NamedSharding
    from jax.sharding import PartitionSpec as P

    mesh = Mesh(np.asarray(devices), ("data",))
    n_devices = len(devices)
    split_names = (*SAMPLE_ARRAYS, *PAIR_ARRAYS, *SAMPLE_PARAMS)

    def place(name, value):
        if value is None or not hasattr(value, "shape"):
            return value
        split = name in split_names and value.ndim >= 1 and value.shape[0] % n_devices == 0
        spec = P("data") if split else P()
        return jax.device_put(value, NamedSharding(mesh, spec))

    kwargs = {k: place(k, v) for k, v in kwargs.items()}
    params = {k: place(k, v) for k, v in params.items()}
    return kwargs, params


def run_svi(
    rng_key,
    model_kwargs: dict,
    init_values: dict,
    *,
    family: str,
    rank: int,
    prior: str = "normal",
    offset: bool = True,
    encoder_width: int = 0,
    batch_sizes: tuple[int, int] | None = None,
    step_size: float = 0.02,
    max_steps: int = 3000,
    min_steps: int = 500,
    chunk_size: int = 100,
    tol: float = 1e-4,
    patience: int = 2,
    progress_bar: bool = False,
    description: str = "MAP (SVI)",
    warn: bool = True,
    max_restarts: int = 3,
    devices=None,
) -> SVIResult:
    """MAP of :func:`bayes_prsn.models.personalized_regression` through SVI.

    Parameters
    ----------
    rng_key : jax.random.PRNGKey
    model_kwargs : dict
        Array arguments of the model (``X``, ``pairs``, ``pair_distances``,
        ``y``, ``gamma``, ``prior_scale``, ...).
    init_values : dict
        Starting point of each latent site (constrained space).
    family, rank, prior, offset, encoder_width
        Static settings of the model.
    batch_sizes : (int, int) or None
        Minibatch SVI: samples and pairs drawn per step
        (:func:`~bayes_prsn.models.personalized_regression_minibatch`). The
        stopping rule is off (the losses are noisy estimates); the run takes
        ``max_steps`` steps with the decaying step size. ``None``: full batch.
    step_size : float
        Adam step size.
    max_steps, min_steps : int
        Step cap and the number of steps always taken.
    chunk_size : int
        Steps per compiled chunk (the stopping rule is checked between chunks).
    tol, patience : float, int
        Stop once the mean loss of a chunk changes by less than ``tol``
        (relative) for ``patience`` chunks in a row.
    progress_bar : bool
        Show a tqdm progress bar (labelled ``description``).
    warn : bool
        Warn (:class:`ConvergenceWarning`) when the step cap is hit.
    devices : sequence of jax.Device, optional
        Shard the optimisation over these devices (data parallel, through
        :mod:`jax.sharding`): per-sample arrays and codes are split along the
        samples, pair arrays along the pairs, and the rest is replicated; the
        compiled steps are the same code, partitioned by XLA. When the number
        of samples is not a multiple of the number of devices, only the pairs
        are split. ``None`` or one device: no sharding.
    max_restarts : int
        When a step gives a non-finite loss or parameters, the chunk is
        discarded, the optimisation restarts from the last finite state with
        a step size 4 times smaller (:class:`NumericalWarning` names the
        step); after ``max_restarts`` such restarts it stops with an error.

    Raises
    ------
    FloatingPointError
        If the loss is not finite at the starting point, or still not finite
        after ``max_restarts`` restarts. Non-finite estimates are never
        returned.
    KeyboardInterrupt
        Ctrl-C is passed on after the progress bar is closed; nothing is returned.
    """
    kwargs = {k: (jnp.asarray(v) if v is not None else None) for k, v in model_kwargs.items()}
    # The guide remembers the shapes it was first set up with, so shapes are part of the key.
    shapes = tuple(sorted((k, None if v is None else tuple(v.shape)) for k, v in kwargs.items()))
    if batch_sizes is not None:
        batch_sizes = (int(batch_sizes[0]), int(batch_sizes[1]))
    static = (family, rank, prior, offset, int(encoder_width), batch_sizes)
    chunk_size = int(chunk_size)
    svi, init, run_chunk, get_params = _compiled(static, shapes, float(step_size), chunk_size)
    init_params = {f"{name}_auto_loc": jnp.asarray(value) for name, value in init_values.items()}
    if devices is not None and len(devices) > 1:
        kwargs, init_params = shard(kwargs, init_params, devices)
    min_steps = min(min_steps, max_steps)
    state, initial_loss = init(rng_key, init_params, kwargs)
    initial_loss = float(initial_loss)
    if not np.isfinite(initial_loss):
        raise FloatingPointError(
            "the negative log-density is not finite at the starting point; check the "
            "inputs for extreme values."
        )
    bar = None
    if progress_bar:
        from tqdm.auto import tqdm

        bar = tqdm(total=max_steps, desc=description, unit="step")
    losses, previous, calm, converged = [], None, 0, False
    restarts, good_state = 0, state
    try:
        while len(losses) * chunk_size < max_steps:
            chunk_key = jax.random.fold_in(rng_key, len(losses) + 1000 * restarts)
            state, chunk_losses = run_chunk(state, kwargs, chunk_key)
            chunk_losses = np.asarray(chunk_losses)
            finite_params = all(
                bool(jnp.all(jnp.isfinite(value))) for value in get_params(state).values()
            )
            if not (np.all(np.isfinite(chunk_losses)) and finite_params):
                bad = np.flatnonzero(~np.isfinite(chunk_losses))
                step = len(losses) * chunk_size + (int(bad[0]) + 1 if bad.size else chunk_size)
                if restarts >= max_restarts:
                    raise FloatingPointError(
                        f"the loss was not finite at step {step}, after {restarts} restart(s) "
                        f"with smaller steps (step_size now {step_size:g}); check the data for "
                        "extreme values (rescale y, remove outliers) or lower step_size."
                    )
                restarts += 1
                step_size = step_size / 4
                warnings.warn(
                    f"the loss was not finite at step {step}; restarting from the last finite "
                    f"state (step {len(losses) * chunk_size}) with step_size {step_size:g}.",
                    NumericalWarning,
                    stacklevel=2,
                )
                svi, init, run_chunk, get_params = _compiled(
                    static, shapes, float(step_size), chunk_size
                )
                init(rng_key, init_params, kwargs)  # sets up the new SVI object; state unused
                state = good_state
                continue
            good_state = state
            losses.append(chunk_losses)
            current = float(chunk_losses.mean())
            if bar is not None:
                bar.update(chunk_size)
                bar.set_postfix(loss=f"{current:.4g}")
            # Minibatch losses are noisy estimates: run the whole schedule.
            if (
                batch_sizes is None
                and previous is not None
                and len(losses) * chunk_size >= min_steps
            ):
                change = abs(previous - current) / max(abs(current), 1.0)
                calm = calm + 1 if change < tol else 0
                if calm >= patience:
                    converged = True
                    break
            previous = current
    finally:
        if bar is not None:
            bar.close()
    losses = np.concatenate(losses)
    params = {
        name[: -len("_auto_loc")]: np.asarray(value) for name, value in get_params(state).items()
    }
    bad = [name for name, value in params.items() if not np.all(np.isfinite(value))]
    if bad:
        raise FloatingPointError(
            f"the MAP estimate of {bad} is not finite; try a smaller step_size or check "
            "the data for extreme values."
        )
    if batch_sizes is not None:
        converged = True  # a fixed schedule of steps with a decaying step size
    if not converged and warn:
        warnings.warn(
            f"SVI stopped at the step cap ({len(losses)} steps) before the relative loss "
            f"change fell below tol={tol}; raise max_steps or step_size.",
            ConvergenceWarning,
            stacklevel=2,
        )
    return SVIResult(params, losses, len(losses), converged)
