"""The desktop app (PySide6 + pyqtgraph, the ``[gui]`` extra): ``soundsentry-gui`` or ``python -m soundsentry.gui``.

Importing this package imports no Qt; :mod:`soundsentry.gui.app` does, when it starts.
The runtime (``soundsentry``) never imports this package.
"""
