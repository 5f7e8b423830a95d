"""Detectors, pure and the same online (stream agents) and offline (``ioc detect``, backtests):
standards and index bands, sensor health, and statistical baselines."""
