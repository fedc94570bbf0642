"""ARFL Studio: adversarially robust feature learning for breast-cancer diagnosis.

Layers (imports point downwards only): ``gui`` -> ``cli``/``commands`` ->
``experiments``/``evaluation`` -> ``training`` -> ``models``/``data``.
Nothing outside ``arfl_studio.gui`` imports Qt.
"""

__version__ = "0.1.0"
