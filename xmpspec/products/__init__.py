"""Paper products: tables (:mod:`.tables`, :mod:`.formatting`) and figures (:mod:`.figures`).

Library entry points: :func:`xmpspec.products.tables.write_tables` (``xmpspec tables``)
and :func:`xmpspec.products.figures.make_all_plots` (``xmpspec plots``); the CNN
comparison figure is :func:`xmpspec.products.figures.comparison_plot`
(``xmpspec compare``). matplotlib is imported only when a figure is made.
"""
