"""`bess-forecaster backtest`: rolling-origin evaluation of base vs fine-tuned Chronos-2, by regime and
lead time, with a covariate ablation, written to a run folder (forecasts.csv, scores.csv, manifest.json)
and to InfluxDB (measurement `forecast`, tag run=<run id>). See docs/backtest.md."""
