"""The desktop app (PySide6 + pyqtgraph, the ``[gui]`` extra). Not built yet."""
