"""MAP inference through SVI with an AutoDelta guide.

:func:`run_svi` is the back-end (:func:`bayes_prsn.fitting.run_map` calls
it). Steps run in jit-compiled ``lax.scan`` chunks (:func:`run_chunks`,
shared with variational inference); between chunks :func:`stopping_rule`
checks the relative change of the mean loss, and a chunk gone non-finite is
run again with smaller steps. Minibatch steps are in
:mod:`bayes_prsn.minibatch`; :func:`shard` places the arrays on several
devices. Full-batch fits on one device pad their samples up to
:func:`sample_bucket` rows (:func:`pad_samples`), so that fits of nearby
sizes (cross-validation folds, grid searches, new data) run the same
compiled chunks instead of compiling again. Fits may run on several threads
at once (:mod:`bayes_prsn.parallel`): the call that traces a program holds
:data:`~bayes_prsn.parallel.TRACE_LOCK`.
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

from .exceptions import ConvergenceWarning, NumericalWarning
from .minibatch import minibatch_steps
from .models import CODE_SITES, personalized_regression, personalized_regression_minibatch
from .parallel import TRACE_LOCK, Cancelled, call_traced_once
from .sample_inputs import MODEL_ARRAYS

__all__ = [
    "SVIResult",
    "SortedTraceELBO",
    "run_svi",
    "run_chunks",
    "stopping_rule",
    "shard",
    "sample_bucket",
    "pad_samples",
    "ConvergenceWarning",
    "NumericalWarning",
]


def _signature(*trees) -> tuple:
    """The abstract values (shape, dtype, weak type) of the arrays of ``trees``, in order."""
    return tuple(str(jax.typeof(leaf)) for leaf in jax.tree_util.tree_leaves(trees))


class SortedTraceELBO(Trace_ELBO):
    """NumPyro's ``Trace_ELBO`` with the sites' terms summed in the order of their names.

    ``Trace_ELBO`` sums the sites' terms in the order of a Python ``set`` of
    their names, which changes from process to process (string hashing,
    ``PYTHONHASHSEED``). The float32 loss then differs in its last bits, and
    where the stopping rule or the divergence check compares losses, the same
    data and ``random_state`` gave another fit in another process
    (``make_small_low_rank``, 20,000 samples: theta-MSE 0.000239 or 0.000259,
    one process in four). The gradients do not depend on that order.
    """

    def __init__(self):
        super().__init__(sum_sites=False)

    def loss_with_mutable_state(self, *args, **kwargs):
        result = super().loss_with_mutable_state(*args, **kwargs)
        terms = result["loss"]
        result["loss"] = sum((terms[name] for name in sorted(terms)), start=jnp.array(0.0))
        return result


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
    """SVI object and jit-compiled programs for one static configuration:
    ``(svi, init, checked_chunk, get_params)``, the chunk of steps as
    :func:`_checked_chunk` runs it.

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
    svi = SVI(model, guide, optim, SortedTraceELBO())
    if batch_sizes is not None:
        svi, init, run_chunk, get_params = minibatch_steps(
            svi, schedule, batch_sizes, encoder_width, chunk_size
        )
        return svi, init, _checked_chunk(run_chunk, get_params), get_params

    @jax.jit
    def init(rng_key, init_params, kwargs):
        # Jitted: run eagerly, SVI.init traces the model op by op (seconds).
        # No loss here: the first step's loss is the starting point's (checked
        # in ``_RestartingChunks``); evaluating it here cost 0.3-0.4 s of XLA
        # compilation in every new configuration (N = 2,000).
        return svi.init(rng_key, init_params=init_params, **kwargs), None

    @jax.jit
    def run_chunk(state, kwargs, key):
        def body(carry, step_key):
            return svi.stable_update(carry, **kwargs)

        return jax.lax.scan(body, state, jax.random.split(key, chunk_size))

    return svi, init, _checked_chunk(run_chunk, svi.get_params), svi.get_params


#: Steps over which the Adam step size halves.
STEP_HALF_LIFE = 1000

#: Model arguments with one row per sample, and with one row per pair.
SAMPLE_ARRAYS = (
    "X",
    "y",
    "likelihood_mask",
    "covariate_features",
    "code_mean",
    *MODEL_ARRAYS,
)
PAIR_ARRAYS = ("pairs", "pair_distances", "pair_weights")
SAMPLE_PARAMS = tuple(f"{site}_auto_loc" for site in CODE_SITES)
#: Full-batch fits of at most this many samples all run with this many rows.
MIN_SAMPLE_BUCKET = 32


def sample_bucket(n_samples: int) -> int:
    """Rows of a full-batch fit of ``n_samples`` samples: the next multiple of a quarter
    of the power of two below it (at least :data:`MIN_SAMPLE_BUCKET`).

    At most 25% more rows than samples (200 samples run as 224, 2,000 as
    2,048, 1,600 as 1,792), and about eight sizes per doubling, so the folds
    of a cross-validation and fits of similar sizes share one compilation.
    The pairs, which dominate a step's cost, are not padded by it.
    """
    n_samples = int(n_samples)
    if n_samples <= MIN_SAMPLE_BUCKET:
        return MIN_SAMPLE_BUCKET
    step = 2 ** max((n_samples - 1).bit_length() - 3, 0)
    return -(-n_samples // step) * step


def pad_samples(kwargs: dict, init_values: dict, n_rows: int) -> tuple[dict, dict]:
    """The model's arguments and start with ``n_rows - n_samples`` rows of padding (NumPy).

    The padding rows copy the first sample's data (valid values for every
    family) and are marked out by ``sample_mask``, which leaves their
    priors and likelihood out of the model (no pair touches them); their
    codes start at zero, where their gradient is zero, so the loss, the
    other sites' gradients and the steps are those of the unpadded model
    (up to float32 rounding of the longer sums).
    """
    n_samples = np.shape(kwargs["X"])[0]
    extra = n_rows - n_samples

    def pad(value, rows=None):
        value = np.asarray(value)
        rows = np.repeat(value[:1], extra, axis=0) if rows is None else rows
        return np.concatenate([value, rows.astype(value.dtype)])

    padded = {
        name: pad(value) if name in SAMPLE_ARRAYS and value is not None else value
        for name, value in kwargs.items()
    }
    if kwargs.get("likelihood_mask") is not None:
        padded["likelihood_mask"] = pad(kwargs["likelihood_mask"], np.zeros(extra, bool))
    padded["sample_mask"] = np.arange(n_rows) < n_samples
    start = {
        name: pad(value, np.zeros((extra, *np.shape(value)[1:]))) if name in CODE_SITES else value
        for name, value in init_values.items()
    }
    return padded, start


def shard(kwargs: dict, params: dict, devices) -> tuple[dict, dict]:
    """Place the model's arrays and parameters on ``devices`` for data-parallel SVI.

    Rows of per-sample arrays (and of the codes) are split across the
    devices when their number divides evenly, rows of pair arrays likewise
    (the pair list is padded, see ``problem.pair_bucket``); everything else is
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
    loss_scale_cap: float = float("inf"),
    progress_bar: bool = False,
    description: str = "MAP (SVI)",
    warn: bool = True,
    max_restarts: int = 3,
    devices=None,
    cancel=None,
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
    loss_scale_cap : float
        The change is relative to the loss, but to at most this many nats:
        from there on ``tol * loss_scale_cap`` nats is an absolute tolerance
        (:func:`stopping_rule`).
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
    cancel : threading.Event, optional
        Set by another thread to stop the run between chunks
        (:class:`bayes_prsn.parallel.Cancelled` is raised).
    max_restarts : int
        When a step gives a non-finite loss or parameters, or a full-batch
        chunk's loss ends far above where it began (:data:`DIVERGENCE`), the
        chunk is discarded and the optimisation restarts from its start with
        a step size 4 times smaller (:class:`NumericalWarning` says why);
        after ``max_restarts`` such restarts it stops with an error.

    Raises
    ------
    FloatingPointError
        If the loss is not finite at the starting point, or still not finite
        after ``max_restarts`` restarts. Non-finite estimates are never
        returned.
    KeyboardInterrupt
        Ctrl-C is passed on after the progress bar is closed; nothing is returned.
    """
    n_samples = np.shape(model_kwargs["X"])[0]
    single_device = devices is None or len(devices) <= 1
    if single_device and batch_sizes is None:
        model_kwargs, init_values = pad_samples(model_kwargs, init_values, sample_bucket(n_samples))
    kwargs = {k: (jnp.asarray(v) if v is not None else None) for k, v in model_kwargs.items()}
    if batch_sizes is not None:
        batch_sizes = (int(batch_sizes[0]), int(batch_sizes[1]))
    static = (family, rank, prior, offset, int(encoder_width), batch_sizes)
    init_params = {f"{name}_auto_loc": jnp.asarray(value) for name, value in init_values.items()}
    if not single_device:
        kwargs, init_params = shard(kwargs, init_params, devices)
    # The guide remembers the shapes it was first set up with, so shapes are part of the key.
    shapes = tuple(sorted((k, None if v is None else tuple(v.shape)) for k, v in kwargs.items()))
    chunks = _RestartingChunks(
        static,
        shapes,
        float(step_size),
        int(chunk_size),
        rng_key,
        kwargs,
        init_params,
        max_restarts,
    )
    # Minibatch losses are noisy estimates: run the whole schedule.
    stop = (
        None
        if batch_sizes is not None
        else stopping_rule(
            tol, patience, min(min_steps, max_steps), int(chunk_size), loss_scale_cap
        )
    )
    # A minibatch run ends on the mean of its last chunks' parameters (iterate averaging).
    runner = chunks if stop is not None else _AveragedChunks(chunks, max_steps, int(chunk_size))
    state, losses, stopped = run_chunks(
        runner,
        chunks.start(),
        max_steps=max_steps,
        chunk_size=int(chunk_size),
        progress_bar=progress_bar,
        description=description,
        stop=stop,
        cancel=cancel,
    )
    final = chunks.get_params(state) if stop is not None else runner.mean()
    params = {
        name[: -len("_auto_loc")]: np.asarray(value)[:n_samples]
        if name in SAMPLE_PARAMS
        else np.asarray(value)
        for name, value in final.items()
    }
    bad = [name for name, value in params.items() if not np.all(np.isfinite(value))]
    if bad:
        raise FloatingPointError(
            f"the MAP estimate of {bad} is not finite; try a smaller step_size or check "
            "the data for extreme values."
        )
    # A minibatch run is a fixed schedule of steps with a decaying step size.
    converged = stopped or batch_sizes is not None
    if not converged and warn:
        warnings.warn(
            f"SVI stopped at the step cap ({len(losses)} steps) before the relative loss "
            f"change fell below tol={tol}; raise max_steps or step_size.",
            ConvergenceWarning,
            stacklevel=2,
        )
    return SVIResult(params, losses, len(losses), converged)


#: A minibatch run (a fixed schedule, no stopping rule) returns the mean of
#: the parameters at the ends of its last chunks: this many, at most a third
#: of the run's (:class:`_AveragedChunks`). Its last steps still move the
#: parameters by the step size in the directions of single minibatches, and
#: the shared ones carry that jitter into every sample's coefficients, where
#: no interval sees it. ``make_small_low_rank``, 100,000 samples, seed 100:
#: the mean of the last 10 of 30 chunks gave theta-MSE 4.6e-5 against
#: 0.00019 for the last iterate (coefficients and intercepts) and 90% intervals
#: covering 0.79 instead of 0.57 (``benchmarks/README.md``, "Iterate averaging").
AVERAGED_CHUNKS = 10


class _AveragedChunks:
    """``chunks`` run as they are, keeping the mean of the parameters after each of the last ones.

    ``min(AVERAGED_CHUNKS, n_chunks // 3)`` chunks (at least one) of a run of
    ``max_steps`` steps are averaged; with one, :meth:`mean` is the last
    chunk's parameters, unchanged.
    """

    def __init__(self, chunks, max_steps: int, chunk_size: int):
        n_chunks = -(-max_steps // chunk_size)
        self.chunks, self.first = chunks, n_chunks - max(1, min(AVERAGED_CHUNKS, n_chunks // 3))
        self.total, self.count = None, 0

    def __call__(self, state, index: int):
        state, losses = self.chunks(state, index)
        if index >= self.first:
            params = self.chunks.get_params(state)
            self.total = (
                params
                if self.total is None
                else jax.tree_util.tree_map(jnp.add, self.total, params)
            )
            self.count += 1
        return state, losses

    def mean(self) -> dict:
        """The mean of the parameters kept (the last chunk's alone when one was)."""
        if self.count == 1:
            return self.total
        return jax.tree_util.tree_map(lambda total: total / self.count, self.total)


class _RestartingChunks:
    """Compiled chunks of steps that restart a chunk gone wrong with smaller steps.

    Called as ``chunks(state, index)`` for the ``index``-th chunk: when a step
    of the chunk gives a non-finite loss or parameters, or a full-batch chunk
    diverges (its loss ends far above where it began, :data:`DIVERGENCE`), the
    chunk is run again from ``state`` with a step size 4 times smaller
    (:class:`NumericalWarning` says why), up to ``max_restarts`` times.
    """

    def __init__(
        self, static, shapes, step_size, chunk_size, rng_key, kwargs, init_params, max_restarts
    ):
        self.static, self.shapes, self.chunk_size = static, shapes, chunk_size
        self.rng_key, self.kwargs, self.init_params = rng_key, kwargs, init_params
        self.step_size, self.max_restarts, self.restarts = step_size, max_restarts, 0
        self.check_first_loss = False
        # Minibatch losses are noisy estimates: only full-batch chunks are checked for divergence.
        self.full_batch = static[-1] is None
        self._build_programs()
        self.signature = _signature(kwargs, init_params)

    def _build_programs(self) -> None:
        """The configuration's compiled programs at the current step size."""
        with TRACE_LOCK:  # one thread builds a configuration's programs, the others reuse them
            self.svi, self.init, self.run_chunk, self.get_params = _compiled(
                self.static, self.shapes, float(self.step_size), self.chunk_size
            )

    def start(self):
        """The optimiser's state at the starting point (whose loss must be finite).

        Full-batch runs check that loss as the first step's (the loss before
        the first update); minibatch runs evaluate it on their first batch here.
        """
        state, initial_loss = call_traced_once(
            self.init, self.signature, self.rng_key, self.init_params, self.kwargs
        )
        self.check_first_loss = initial_loss is None
        if not self.check_first_loss and not np.isfinite(float(initial_loss)):
            _non_finite_start()
        return state

    def __call__(self, state, index: int):
        while True:
            counter = np.uint32(index + 1000 * self.restarts)
            new_state, losses, finite_params = call_traced_once(
                self.run_chunk, self.signature, state, self.kwargs, self.rng_key, counter
            )
            losses = np.asarray(losses)
            if self.check_first_loss:
                self.check_first_loss = False
                if not np.isfinite(losses[0]):
                    _non_finite_start()
            finite = np.all(np.isfinite(losses)) and bool(finite_params)
            if finite and not (self.full_batch and _diverged(losses)):
                return new_state, losses
            self._restart(losses, index, finite)

    def _restart(self, losses: np.ndarray, index: int, finite: bool) -> None:
        bad = np.flatnonzero(~np.isfinite(losses))
        done = index * self.chunk_size
        step = done + (int(bad[0]) + 1 if bad.size else self.chunk_size)
        if finite:
            what = (
                f"the loss rose from {losses[0]:.6g} to {losses[-1]:.6g} over steps {done + 1} "
                f"to {step} (the optimiser diverged)"
            )
        else:
            what = f"the loss was not finite at step {step}"
        if self.restarts >= self.max_restarts:
            raise FloatingPointError(
                f"{what}, after {self.restarts} restart(s) with smaller steps (step_size now "
                f"{self.step_size:g}); check the data for extreme values (rescale y, remove "
                "outliers) or lower step_size."
            )
        self.restarts += 1
        self.step_size = self.step_size / 4
        warnings.warn(
            f"{what}; restarting from the state of step {done} with step_size {self.step_size:g}.",
            NumericalWarning,
            stacklevel=5,
        )
        self._build_programs()
        # Sets up the new SVI object.
        call_traced_once(self.init, self.signature, self.rng_key, self.init_params, self.kwargs)


#: A full-batch chunk whose last loss exceeds its first by more than this share of the
#: first's magnitude diverged: it is run again with smaller steps. Adam's first steps
#: from a warm start move every parameter by about the step size whatever its
#: gradient; on poisson data (N = 2,000) one such step took the loss from 49,802 to
#: 7e8, and 3,000 steps ended at 164,678 with theta-MSE 4.1 against 0.006.
DIVERGENCE = 0.5


def _diverged(losses: np.ndarray) -> bool:
    return bool(losses[-1] - losses[0] > DIVERGENCE * abs(losses[0]))


def _non_finite_start():
    raise FloatingPointError(
        "the negative log-density is not finite at the starting point; check the "
        "inputs for extreme values."
    )


def _checked_chunk(run_chunk, get_params):
    """``run_chunk`` with its key and the finiteness of the parameters it ends at, compiled
    as one program: ``(state, losses, finite) = checked(state, kwargs, rng_key, counter)``,
    the chunk's key being ``fold_in(rng_key, counter)``.

    One call and one device sync per chunk. (Read one by one, the parameters
    cost a sync each and ran the guide's transforms op by op: a tenth of a
    200-sample fit's time, 2.7 s against 2.3-2.5 s with a compiled check. The
    key folded in and the check run apart from the chunk cost two more calls
    and a sync per chunk: 0.3-0.5 s of a 200-sample fit's 4.7 s.) The chunk's
    steps are the same program as before, and the same bits.
    """

    @jax.jit
    def checked(state, kwargs, rng_key, counter):
        new_state, losses = run_chunk(state, kwargs, jax.random.fold_in(rng_key, counter))
        leaves = jax.tree_util.tree_leaves(get_params(new_state))
        finite = jnp.all(jnp.stack([jnp.all(jnp.isfinite(leaf)) for leaf in leaves]))
        return new_state, losses, finite

    return checked


def stopping_rule(
    tol: float, patience: int, min_steps: int, chunk_size: int, loss_scale_cap=float("inf")
):
    """``stop(chunks)``: true once the mean loss of a chunk changed by less than ``tol``
    (relative) for ``patience`` chunks in a row, after at least ``min_steps`` steps.

    The change is relative to the loss's size, at most ``loss_scale_cap``:
    the loss is a negative log density, and a change of a few nats matters
    to the posterior however many samples there are, while ``tol`` times a
    loss that grows with them does not stay a few nats (see
    :data:`bayes_prsn.fitting.FINAL_LOSS_SCALE`).
    """
    previous, calm = None, 0

    def stop(chunks) -> bool:
        nonlocal previous, calm
        current = float(chunks[-1].mean())
        if previous is not None and len(chunks) * chunk_size >= min_steps:
            change = abs(previous - current) / min(max(abs(current), 1.0), loss_scale_cap)
            calm = calm + 1 if change < tol else 0
            if calm >= patience:
                return True
        previous = current
        return False

    return stop


#: Holds one entry once a progress bar has said "compiling" (said once per process).
_COMPILE_NOTICE: list = []


def run_chunks(
    run_chunk,
    state,
    *,
    max_steps: int,
    chunk_size: int,
    progress_bar: bool = False,
    description: str = "MAP (SVI)",
    label: str = "loss",
    stop=None,
    cancel=None,
):
    """Run ``run_chunk(state, index)`` chunk after chunk, with a progress bar.

    Stops after ``max_steps`` steps (rounded up to whole chunks) or when
    ``stop(chunks)`` (the list of every chunk's losses so far) is true.
    Returns the last state, every loss, and whether ``stop`` ended the run.
    Raises :class:`~bayes_prsn.parallel.Cancelled` before a chunk once ``cancel``
    (a :class:`threading.Event`) is set.
    Used by the MAP (:func:`run_svi`) and by variational inference
    (:func:`bayes_prsn.posterior.run_vi`).
    """
    bar = None
    if progress_bar:
        from tqdm.auto import tqdm

        bar = tqdm(total=max_steps, desc=description, unit="step")
        if not _COMPILE_NOTICE:
            # The process's first chunk is compiled by JAX first: seconds without a step.
            _COMPILE_NOTICE.append(True)
            bar.set_postfix_str("compiling (first run only)", refresh=True)
    chunks, stopped = [], False
    try:
        while len(chunks) * chunk_size < max_steps:
            if cancel is not None and cancel.is_set():
                raise Cancelled(f"{description} stopped: its batch of fits was given up")
            state, losses = run_chunk(state, len(chunks))
            chunks.append(np.asarray(losses))
            if bar is not None:
                bar.update(min(chunk_size, max_steps - bar.n))
                bar.set_postfix({label: f"{np.nanmean(chunks[-1]):.4g}"})
            if stop is not None and stop(chunks):
                stopped = True
                break
    finally:
        if bar is not None:
            if stopped:
                # Converged early: close the bar at its end, so it does not read as an abort.
                bar.total = bar.n
                bar.set_postfix_str(f"converged, {label}={np.nanmean(chunks[-1]):.4g}")
            bar.close()
    return state, np.concatenate(chunks), stopped
