"""Instrument plug-ins of the reduction layer, one module per instrument.

Every module here is imported by :func:`xmpspec.reduce.registry.get_instrument`
and registers an :class:`~xmpspec.reduce.registry.InstrumentPlugin` with
:func:`~xmpspec.reduce.registry.register`.
"""
