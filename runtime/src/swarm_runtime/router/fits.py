"""Online least-squares fits with exponential forgetting and ridges toward priors (no I/O).

The estimator learns a backend's time to first token as a line in the prompt tokens ahead
(:class:`LineFit`) and its engine step time as a plane in the sequences and prompt tokens in a
step (:class:`PlaneFit`).
"""

from __future__ import annotations

from .routing import PRIOR

__all__ = ["LineFit", "PlaneFit"]


class LineFit:
    """Exponentially weighted least squares of ``y = a + b·x``, ridged toward a prior slope.

    With prompts of one size the slope is not identifiable; the ridge then keeps the prior
    slope and lets the intercept absorb the difference.
    """

    def __init__(self, decay: float = 0.97, ridge: float = 100.0**2,
                 prior_slope: float = PRIOR.prefill_s_per_token) -> None:
        self.decay = decay
        self.ridge = ridge
        self.prior_slope = prior_slope
        self.n = self.sx = self.sy = self.sxx = self.sxy = 0.0
        self.count = 0

    def add(self, x: float, y: float) -> None:
        d = self.decay
        self.n = self.n * d + 1.0
        self.sx = self.sx * d + x
        self.sy = self.sy * d + y
        self.sxx = self.sxx * d + x * x
        self.sxy = self.sxy * d + x * y
        self.count += 1

    def line(self) -> tuple[float, float]:
        """``(intercept, slope)``, both kept positive."""
        if self.n <= 0:
            return PRIOR.base_s, self.prior_slope
        mx, my = self.sx / self.n, self.sy / self.n
        vxx = max(0.0, self.sxx / self.n - mx * mx)
        vxy = self.sxy / self.n - mx * my
        slope = max(1e-9, (vxy + self.ridge * self.prior_slope) / (vxx + self.ridge))
        return max(1e-4, my - slope * mx), slope


class PlaneFit:
    """Exponentially weighted least squares of ``y = a + b·u + c·v``, each slope ridged toward its prior.

    An engine step's time against the sequences and the prompt tokens in it: both grow together
    when a busy engine admits new prompts, so a line in prompt tokens alone would credit the
    extra sequences' cost to prefill. A slope whose regressor barely varies keeps its prior.
    """

    def __init__(self, decay: float, ridge_u: float, prior_u: float, ridge_v: float, prior_v: float) -> None:
        self.decay = decay
        self.ridge = (ridge_u, ridge_v)
        self.prior = (prior_u, prior_v)
        self.sums = [0.0] * 9  # n, Σu, Σv, Σy, Σuu, Σuv, Σvv, Σuy, Σvy
        self.count = 0

    def add(self, u: float, v: float, y: float) -> None:
        d = self.decay
        for k, x in enumerate((1.0, u, v, y, u * u, u * v, v * v, u * y, v * y)):
            self.sums[k] = self.sums[k] * d + x
        self.count += 1

    def plane(self) -> tuple[float, float, float]:
        """``(a, b, c)``; the slopes are kept non-negative and ``a`` positive."""
        n, su, sv, sy, suu, suv, svv, suy, svy = self.sums
        (ru, rv), (pu, pv) = self.ridge, self.prior
        if n <= 0:
            return 1e-4, pu, pv
        mu, mv, my = su / n, sv / n, sy / n
        cuu, cuv, cvv = suu / n - mu * mu + ru, suv / n - mu * mv, svv / n - mv * mv + rv
        cuy, cvy = suy / n - mu * my + ru * pu, svy / n - mv * my + rv * pv
        det = cuu * cvv - cuv * cuv
        b = max(0.0, (cuy * cvv - cvy * cuv) / det)
        c = max(1e-9, (cvy * cuu - cuy * cuv) / det)
        return max(1e-4, my - b * mu - c * mv), b, c
