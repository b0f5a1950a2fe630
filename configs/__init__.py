"""livematte's presets, installed as a package so `importlib.resources` finds them (livematte/config.py)."""
