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
    optim = numpyro.optim.Adam(lambda i: step_size * jnp.maximum(0.05, 0.5 ** (i / STEP_HALF_LIFE)))
    svi = SVI(model, guide, optim, Trace_ELBO())

    def batches(key, kwargs):
        """Uniform minibatch of samples and of pairs (nothing when full batch)."""
        if batch_sizes is None:
            return {}
        key_samples, key_pairs = jax.random.split(key)
        n_samples, n_pairs = kwargs["X"].shape[0], kwargs["pairs"].shape[0]
        return {
            "batch": jax.random.randint(key_samples, (batch_sizes[0],), 0, n_samples),
            "pair_batch": jax.random.randint(key_pairs, (batch_sizes[1],), 0, n_pairs),
        }

    @jax.jit
    def init(rng_key, init_params, kwargs):
        # Jitted: run eagerly, SVI.init traces the model op by op (seconds).
        kwargs = dict(kwargs, **batches(rng_key, kwargs))
        state = svi.init(rng_key, init_params=init_params, **kwargs)
        return state, svi.evaluate(state, **kwargs)

    @jax.jit
    def run_chunk(state, kwargs, key):
        def body(carry, step_key):
            carry, loss = svi.stable_update(carry, **kwargs, **batches(step_key, kwargs))
            return carry, loss

        return jax.lax.scan(body, state, jax.random.split(key, chunk_size))

    return svi, init, run_chunk


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
    svi, init, run_chunk = _compiled(static, shapes, float(step_size), chunk_size)
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
                bool(jnp.all(jnp.isfinite(value))) for value in svi.get_params(state).values()
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
                svi, init, run_chunk = _compiled(static, shapes, float(step_size), chunk_size)
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
        name[: -len("_auto_loc")]: np.asarray(value)
        for name, value in svi.get_params(state).items()
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
