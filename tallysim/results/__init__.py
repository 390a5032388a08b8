"""Reading runs and drawing them: `metrics` (the run-directory schema, the headline accuracy, seed
aggregation, the summary line, the matplotlib setup; the headline numbers are in `headline`, the
row writer in `rows`, both re-exported by `metrics`), `plot` (`tallysim plot`), `pareto`
(`tallysim pareto`) and `figures` (`tallysim figure`). Nothing is imported here, so `run` can use
`metrics` without loading the plotting modules."""
