"""Result rows (results.csv), published reference tables and the leaderboard, tables, plots, run folders,
`bench compare` and `bench readme`.

May import: bench.common, bench.evaluation, data.
"""
