"""Paper products: tables (:mod:`.tables`, :mod:`.formatting`) and figures (:mod:`.figures`).

The tables are built in :mod:`.tables` from :mod:`.papertable` (model and LaTeX),
:mod:`.tablecontext` (derived rows joined to the selection), :mod:`.fluxtable`
and :mod:`.mrt` (machine-readable text); :mod:`.report` is the HTML page.

Library entry points: :func:`xmpspec.products.tables.write_tables` (``xmpspec tables``)
and :func:`xmpspec.products.figures.make_all_plots` (``xmpspec plots``); the CNN
comparison figure is :func:`xmpspec.products.figures.comparison_plot`
(``xmpspec compare``). matplotlib is imported only when a figure is made.
"""
