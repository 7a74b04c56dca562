"""matplotlib, imported when a plot is drawn, and the figure a plot draws on."""

from __future__ import annotations

__all__ = ["pyplot", "figure_for"]


def pyplot():
    """``matplotlib.pyplot``, with a clear error when matplotlib is missing."""
    try:
        import matplotlib.pyplot as plt
    except ImportError as error:  # pragma: no cover - depends on the environment
        raise ImportError("plots need matplotlib: pip install 'bayes_prsn[plots]'") from error
    return plt


def figure_for(ax, figsize, **subplots):
    """``(fig, ax)``: a new figure of ``figsize`` when ``ax`` is None, else ``ax``'s own.

    ``ax`` may be one axes or an array of them; ``subplots`` go to
    ``plt.subplots`` for a new figure.
    """
    if ax is None:
        return pyplot().subplots(figsize=figsize, **subplots)
    first = ax[0] if hasattr(ax, "__getitem__") else ax
    return first.figure, ax
