r"""Units: the internal scaling of the data and every conversion back to the user's units.

The model sees standardised predictors (plus a column of ones for the
intercept) and, for the gaussian family, a standardised response, so every
quantity it fits is O(1) whatever the data's units. A coefficient
:math:`\theta` on that scale maps back to
:math:`\beta_j = \theta_j s_y / s_{x_j}` and the intercept to
:math:`b = s_y (\theta_0 - \sum_j \theta_j m_{x_j} / s_{x_j}) + m_y`; a
gaussian noise scale to :math:`\sigma s_y`. This module is the one place
where units change.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .preprocessing import Standardizer

__all__ = ["Scaling"]


@dataclass(frozen=True)
class Scaling:
    """The affine maps of the predictors and the response into the model's units."""

    x: Standardizer
    y: Standardizer
    fit_intercept: bool

    @classmethod
    def fit(
        cls,
        X: np.ndarray,
        y: np.ndarray,
        *,
        scale_response: bool,
        fit_intercept: bool,
        robust: bool = False,
    ):
        """Standardise ``X`` (centred when there is an intercept) and, if asked, ``y``.

        ``robust``: the response by its median and its median absolute
        deviation (times 1.4826, the sd of normal data), so that a few gross
        outliers do not stretch the units in which the noise scales are tried
        (the student_t family).
        """
        x = Standardizer.fit(X, center=fit_intercept)
        if scale_response and robust:
            middle = float(np.median(y))
            spread = 1.4826 * float(np.median(np.abs(y - middle)))
            if not spread > 0:
                spread = float(np.std(y)) or 1.0
            y_scaler = Standardizer(
                np.array([middle if fit_intercept else 0.0]), np.array([spread])
            )
        elif scale_response:
            y_scaler = Standardizer.fit(y[:, None], center=fit_intercept)
        else:
            y_scaler = Standardizer(np.zeros(1), np.ones(1))
        return cls(x, y_scaler, fit_intercept)

    @property
    def n_predictors(self) -> int:
        return int(np.shape(self.x.scale)[0])

    def design(self, X: np.ndarray) -> np.ndarray:
        """The model's predictors: scaled ``X``, with a column of ones for the intercept."""
        scaled = self.x.transform(X)
        if self.fit_intercept:
            scaled = np.column_stack([scaled, np.ones(scaled.shape[0])])
        return scaled

    def response(self, y: np.ndarray) -> np.ndarray:
        """The model's response."""
        return self.y.transform(y[:, None])[:, 0]

    def to_original_units(self, theta: np.ndarray):
        """Internal coefficients (rows; intercept last) as ``(coef, intercept)``, user units."""
        theta = np.atleast_2d(theta)
        p = self.n_predictors
        sy, my = self.y.scale[0], self.y.center[0]
        coef = theta[:, :p] * sy / self.x.scale
        if self.fit_intercept:
            shift = theta[:, :p] @ (self.x.center / self.x.scale)
            intercept = sy * (theta[:, p] - shift) + my
        else:
            intercept = np.zeros(theta.shape[0])
        return coef, intercept

    def dictionary_to_original(self, dictionary: np.ndarray) -> np.ndarray:
        """The dictionary's predictor columns in the user's units (without the intercept)."""
        return dictionary[:, : self.n_predictors] * (self.y.scale[0] / self.x.scale)

    def noise_to_original(self, noise_scale):
        """A gaussian noise scale in the units of ``y`` (None stays None)."""
        if noise_scale is None:
            return None
        return float(noise_scale) * float(self.y.scale[0])

    def noise_to_internal(self, noise_scale: float) -> float:
        """A noise scale given in the units of ``y``, in the model's units."""
        return float(noise_scale) / self.y.scale[0]

    def noise_ratio(self, other: Scaling) -> float:
        """Factor taking a noise scale in ``other``'s model units to this scaling's."""
        return float(other.y.scale[0] / self.y.scale[0])

    def noise_from(self, other: Scaling, noise_scale: float) -> float:
        """A noise scale in ``other``'s model units, in this scaling's."""
        return noise_scale * self.noise_ratio(other)

    def squared_error_from(self, other: Scaling, value: float) -> float:
        """A mean squared error in ``other``'s model units, in this scaling's."""
        return value * self.noise_ratio(other) ** 2
