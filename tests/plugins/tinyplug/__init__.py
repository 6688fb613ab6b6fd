"""A plugin of the test suite's own, named by import path (``tinyplug.task:TinyTask``), never installed.

Tests put ``tests/plugins`` on the ``PYTHONPATH`` of the processes they start, as a user developing a
model before packaging it would (docs/plugins.md).
"""
