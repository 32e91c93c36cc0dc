"""bangban engine: the framework-free core of the 帮办代办 case service.

Public entry points are the use cases in :mod:`engine.services` and the errors in :mod:`engine.errors`.
This package never imports Flask.
"""
