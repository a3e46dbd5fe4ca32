"""Ray Tune sweeps over experiment configs: a sweep file, a function trainable, a runner and a sweep report.

Only `tune_compat` imports Ray or Tune; the rest is plain Python over typed specs and tables.
"""
