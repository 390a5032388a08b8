"""Reading runs and drawing them: `metrics` (the run-directory schema, the headline accuracy, seed
aggregation, the summary line, the matplotlib setup), `plot` (`tallysim plot`), `pareto`
(`tallysim pareto`) and `figures` (`tallysim figure`). Nothing is imported here, so `run` can use
`metrics` without loading the plotting modules."""
