"""The harness: `python -m bench` (cli.py, __main__.py), `bench run` (run.py) and the argparse definitions
every command shares (arguments.py); each concern in a folder of its own.

May import: bench, data, models.
"""
