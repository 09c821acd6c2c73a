"""OpenSim `Function`s of one coordinate, evaluated in JAX.

Each OpenSim function class that can drive a joint axis or a coordinate coupler is
parsed once (numpy, at load time) into a small immutable object whose `__call__`
evaluates it on a JAX array of any shape. Evaluation follows OpenSim 4.6 exactly,
including outside the knot range (splines and piecewise-linear functions extend
linearly with their end slope there), and is differentiable: the knot-interval
index is found on a stop-gradient copy of `x`, so gradients flow through the
cubic in `x - x_k` (and through the linear extensions outside the knots).

The spline coefficients are computed as OpenSim computes them:
* `SimmSpline`: the Forsythe-Malcolm-Moler cubic spline (end third derivatives
  matched to divided differences of the end knots; Forsythe, Malcolm & Moler,
  "Computer Methods for Mathematical Computations", 1977, routine SPLINE).
* `NaturalCubicSpline`: in OpenSim the same algorithm as SimmSpline.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np


class Function:
  """A scalar function of one coordinate value, evaluated elementwise."""

  def __call__(self, x: jax.Array) -> jax.Array:
    raise NotImplementedError

  @property
  def is_identity(self) -> bool:
    """True for LinearFunction(1, 0): OpenSim treats that axis as a plain DoF."""
    return False

  @property
  def is_constant(self) -> bool:
    return False

  def constant_value(self) -> float:
    """The value of a constant function, as a Python float (trace-time)."""
    raise TypeError(f'{type(self).__name__} is not constant')


@dataclasses.dataclass(frozen=True, eq=False)
class Constant(Function):
  value: float

  def __call__(self, x):
    return jnp.full_like(x, self.value)

  @property
  def is_constant(self) -> bool:
    return True

  def constant_value(self) -> float:
    return float(self.value)


@dataclasses.dataclass(frozen=True, eq=False)
class Linear(Function):
  slope: float
  intercept: float

  def __call__(self, x):
    if self.is_identity:
      return x
    return self.slope * x + self.intercept

  @property
  def is_identity(self) -> bool:
    return self.slope == 1.0 and self.intercept == 0.0


@dataclasses.dataclass(frozen=True, eq=False)
class Polynomial(Function):
  """sum_k coefficients[k] * x**(n-1-k): highest order first, as OpenSim stores it."""

  coefficients: tuple[float, ...]

  def __call__(self, x):
    result = jnp.zeros_like(x)
    for c in self.coefficients:  # Horner.
      result = result * x + c
    return result


@dataclasses.dataclass(frozen=True, eq=False)
class Multiplier(Function):
  """OpenSim MultiplierFunction: `scale * inner(x)`."""

  inner: Function
  scale: float

  def __call__(self, x):
    return self.scale * self.inner(x)

  @property
  def is_constant(self) -> bool:
    return self.inner.is_constant

  def constant_value(self) -> float:
    return float(self.scale) * self.inner.constant_value()


@dataclasses.dataclass(frozen=True, eq=False)
class PiecewiseCubic(Function):
  """Cubic pieces y_k + dx (b_k + dx (c_k + dx d_k)), dx = x - x_k.

  Covers SimmSpline, NaturalCubicSpline and PiecewiseLinearFunction (c = d = 0).
  Outside [x_0, x_{n-1}] the value continues linearly with slope b_0 on the left
  and `end_slope` on the right, which is what OpenSim 4.6 does for these classes.
  """

  kind: str
  x: np.ndarray  # (n,) strictly increasing knots
  y: np.ndarray  # (n,)
  b: np.ndarray  # (n,) first-derivative coefficient per interval (b[-1]: slope at x_{n-1})
  c: np.ndarray  # (n,)
  d: np.ndarray  # (n,)

  def __call__(self, x):
    dtype = x.dtype
    knots = jnp.asarray(self.x, dtype)
    n = self.x.shape[0]
    # Interval index from a gradient-free copy: the index is piecewise constant.
    k = jnp.clip(
        jnp.searchsorted(knots, jax.lax.stop_gradient(x), side='right') - 1,
        0, n - 2)
    dx = x - knots[k]
    y, b, c, d = (jnp.asarray(a, dtype)[k] for a in (self.y, self.b, self.c, self.d))
    inside = y + dx * (b + dx * (c + dx * d))
    left = float(self.y[0]) + float(self.b[0]) * (x - float(self.x[0]))
    right = float(self.y[-1]) + float(self.b[-1]) * (x - float(self.x[-1]))
    return jnp.where(x < self.x[0], left, jnp.where(x > self.x[-1], right, inside))


def simm_spline(x, y) -> PiecewiseCubic:
  """OpenSim SimmSpline coefficients (Forsythe-Malcolm-Moler)."""
  x, y = _check_knots(x, y)
  n = x.shape[0]
  if n == 2:
    slope = (y[1] - y[0]) / (x[1] - x[0])
    b = np.array([slope, slope])
    return PiecewiseCubic('SimmSpline', x, y, b, np.zeros(2), np.zeros(2))
  h = np.diff(x)  # interval widths
  slopes = np.diff(y) / h
  # Tridiagonal system for sigma (proportional to the second derivatives).
  diag = np.empty(n)
  rhs = np.empty(n)
  diag[1:-1] = 2.0 * (h[:-1] + h[1:])
  rhs[1:-1] = slopes[1:] - slopes[:-1]
  diag[0], diag[-1] = -h[0], -h[-1]
  rhs[0] = rhs[-1] = 0.0
  if n > 3:
    # End conditions: third derivatives from divided differences of the end knots.
    rhs[0] = rhs[2] / (x[3] - x[1]) - rhs[1] / (x[2] - x[0])
    rhs[0] = rhs[0] * h[0] ** 2 / (x[3] - x[0])
    rhs[-1] = rhs[-2] / (x[-1] - x[-3]) - rhs[-3] / (x[-2] - x[-4])
    rhs[-1] = -rhs[-1] * h[-1] ** 2 / (x[-1] - x[-4])
  sigma = _solve_symmetric_tridiagonal(diag, h, rhs)
  b = np.empty(n)
  b[:-1] = slopes - h * (sigma[1:] + 2.0 * sigma[:-1])
  b[-1] = slopes[-1] + h[-1] * (sigma[-2] + 2.0 * sigma[-1])
  d = np.empty(n)
  d[:-1] = (sigma[1:] - sigma[:-1]) / h
  d[-1] = d[-2]
  c = 3.0 * sigma
  return PiecewiseCubic('SimmSpline', x, y, b, c, d)


def natural_cubic_spline(x, y) -> PiecewiseCubic:
  """OpenSim NaturalCubicSpline.

  Despite its name, OpenSim 4.6 computes its coefficients with the same
  Forsythe-Malcolm-Moler end conditions as SimmSpline (checked against the
  opensim package in tests), so we do too.
  """
  return dataclasses.replace(simm_spline(x, y), kind='NaturalCubicSpline')


def piecewise_linear(x, y) -> PiecewiseCubic:
  """OpenSim PiecewiseLinearFunction: straight segments, end slopes beyond the knots."""
  x, y = _check_knots(x, y)
  slopes = np.diff(y) / np.diff(x)
  b = np.append(slopes, slopes[-1])
  zeros = np.zeros_like(b)
  return PiecewiseCubic('PiecewiseLinearFunction', x, y, b, zeros, zeros)


def _check_knots(x, y):
  x = np.asarray(x, np.float64).reshape(-1)
  y = np.asarray(y, np.float64).reshape(-1)
  if x.shape != y.shape:
    raise ValueError(f'x has {x.size} values but y has {y.size}')
  if x.size < 2:
    raise ValueError(f'needs at least 2 knots, got {x.size}')
  if not np.all(np.isfinite(x)) or not np.all(np.isfinite(y)):
    raise ValueError('knots must be finite numbers')
  if np.any(np.diff(x) <= 0):
    raise ValueError('knot x values must be strictly increasing')
  return x, y


def _solve_symmetric_tridiagonal(diag, off, rhs):
  """Thomas algorithm: diag (n,), off (n-1,) both sub- and super-diagonal, rhs (n,)."""
  diag = diag.astype(np.float64).copy()
  rhs = rhs.astype(np.float64).copy()
  n = diag.shape[0]
  for i in range(1, n):
    t = off[i - 1] / diag[i - 1]
    diag[i] -= t * off[i - 1]
    rhs[i] -= t * rhs[i - 1]
  out = np.empty(n)
  out[-1] = rhs[-1] / diag[-1]
  for i in range(n - 2, -1, -1):
    out[i] = (rhs[i] - off[i] * out[i + 1]) / diag[i]
  return out
