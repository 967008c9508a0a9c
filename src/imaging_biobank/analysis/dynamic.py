"""Dynamic signal features of a time-intensity curve (DCE-MR, dynamic PET, perfusion CT):
time to peak, wash-in and wash-out slopes, area under the curve. Pure numpy.

The curve is the mean signal in a region at each time point. Definitions (the common
semi-quantitative DCE descriptors): baseline = the first point; peak = the maximum;
wash-in slope = (peak - baseline) / (time of peak - first time); wash-out slope = (last -
peak) / (last time - time of peak), 0 when the peak is the last point; AUC by the
trapezoidal rule over the whole curve, of the signal above baseline.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


class CurveError(ValueError):
    """A curve that cannot give features (too short, times not increasing, NaN)."""


@dataclass(frozen=True)
class DynamicFeature:
    name: str
    value: float
    unit: str  # UCUM, with {signal} for the signal's own unit


def curve_features(times_s: np.ndarray, signal: np.ndarray) -> list[DynamicFeature]:
    """The semi-quantitative features of one curve (times in seconds)."""
    t = np.asarray(times_s, dtype=float)
    y = np.asarray(signal, dtype=float)
    if t.shape != y.shape or t.ndim != 1:
        raise CurveError(f"times and signal must be 1-D of one length, not {t.shape}/{y.shape}")
    if t.size < 3:
        raise CurveError(f"a curve needs at least 3 time points, not {t.size}")
    if not (np.all(np.isfinite(t)) and np.all(np.isfinite(y))):
        raise CurveError("the curve holds NaN or infinite values")
    if np.any(np.diff(t) <= 0):
        raise CurveError("time points must increase")
    peak = int(np.argmax(y))
    baseline = y[0]
    wash_in = (y[peak] - baseline) / (t[peak] - t[0]) if peak > 0 else 0.0
    wash_out = (y[-1] - y[peak]) / (t[-1] - t[peak]) if peak < t.size - 1 else 0.0
    above = y - baseline
    auc = float(np.sum((above[1:] + above[:-1]) * np.diff(t)) / 2.0)
    return [
        DynamicFeature("time to peak", float(t[peak] - t[0]), "s"),
        DynamicFeature("peak enhancement", float(y[peak] - baseline), "{signal}"),
        DynamicFeature("wash-in slope", float(wash_in), "{signal}/s"),
        DynamicFeature("wash-out slope", float(wash_out), "{signal}/s"),
        DynamicFeature("area under the curve", auc, "{signal}.s"),
    ]
