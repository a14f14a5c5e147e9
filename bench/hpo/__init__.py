"""The search-efficiency study: how many trial-epochs a searcher needs to reach the best configuration.

TPE + ASHA (the sweeps' own searcher and scheduler) against random search +
FIFO, counted in trial-epochs. Two commands (`python -m bench.hpo NAME`):

- `search`: real sweeps of a study (search.py), scored against a best-known
  configuration trained again at fresh seeds (best_known.py).
- `replay`: many sweeps replayed on a measured grid of learning curves
  (grid.py; trained by grid_folder.py, in Tune or local processes with
  grid_local.py), through Tune or a virtual clock (engines.py, simulate.py),
  each trial drawn from its cell's runs (draws.py); what a sweep reached and
  when (reach.py, stats.py).

It uses bench.search's public pieces (the study, its searcher and scheduler,
`run_phase`, the Tune records) and nothing private; the production sweep does
not know it exists. Measured grids ship in results/grids/, the write-up in
results/search-efficiency.md.
"""
