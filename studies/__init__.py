"""Studies behind the documentation (accuracy, enrollment, threshold spreads); not part of the installed package.

Run from a checkout, e.g. ``python -m studies.accuracy --help``. They import only public names of
``soundsentry`` (the runtime) and ``soundsentry.train`` (the training package, [train] extra).
"""
