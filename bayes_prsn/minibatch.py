"""Minibatch MAP steps whose cost does not grow with the number of samples.

Every step draws ``batch_sizes`` samples and pairs and gathers the codes of
the samples they touch (M = B + 2 B_p rows at most) into the model's code
site (the ``positions`` argument of
:func:`bayes_prsn.models.personalized_regression_minibatch`). The shared
sites take numpyro's Adam step; the gathered code rows take Adam's step with
their own moments and bias correction (a row's count of updates) and are
written back. Rows not drawn do not move, so a step costs O(B + B_p) and not
O(N K) (at N = 1e6 the dense update took 0.12 s of every step). A step whose
loss or gradient is not finite changes nothing and reports a NaN loss, as
numpyro's ``stable_update`` does.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax.flatten_util import ravel_pytree

from .adam import adam_update
from .models import code_site

__all__ = ["MinibatchState", "minibatch_steps"]


class MinibatchState(NamedTuple):
    svi: object  # numpyro's SVIState, its optimiser over the shared sites only
    codes: jax.Array  # (N, K) every sample's code (residual)
    m: jax.Array  # Adam's moments of the codes, (N, K)
    v: jax.Array
    count: jax.Array  # (N,) updates each code row has had (its bias correction)


def draw_batch(key, kwargs, batch_sizes):
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


def _gather(values, rows):
    return values.at[rows].get(mode="fill", fill_value=0)


def minibatch_steps(svi, schedule, batch_sizes, encoder_width, chunk_size):
    """``(svi, init, run_chunk, get_params)`` for minibatch steps, as :mod:`bayes_prsn.svi` uses."""
    loc = code_site(encoder_width) + "_auto_loc"

    def get_params(state):
        shared = svi.constrain_fn(svi.optim.get_params(state.svi.optim_state))
        return {**shared, loc: state.codes}

    @jax.jit
    def init(rng_key, init_params, kwargs):
        drawn, rows = draw_batch(rng_key, kwargs, batch_sizes)
        codes = jnp.asarray(init_params[loc])
        local = dict(init_params, **{loc: _gather(codes, rows)})
        state = svi.init(rng_key, init_params=local, **kwargs, **drawn)
        loss = svi.evaluate(state, **kwargs, **drawn)
        shared = {k: v for k, v in svi.optim.get_params(state.optim_state).items() if k != loc}
        zeros = jnp.zeros_like(codes)
        state = MinibatchState(
            state._replace(optim_state=svi.optim.init(shared)),
            codes,
            zeros,
            zeros,
            jnp.zeros(codes.shape[0], dtype=jnp.int32),
        )
        return state, loss

    def step(state, kwargs, key):
        drawn, rows = draw_batch(key, kwargs, batch_sizes)
        own = _gather(state.codes, rows)
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
        count, m_old, v_old = (_gather(x, rows) for x in (state.count, state.m, state.v))
        count = count + 1
        moved, m, v = adam_update(own, g_own, m_old, v_old, count[:, None], schedule(i))

        def put(values, new, old):
            return values.at[rows].set(jnp.where(ok, new, old), mode="drop")

        new = MinibatchState(
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
