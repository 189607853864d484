"""Releases: one snapshot exported as a standalone, checksummed folder researchers download.

`folder` makes, verifies and downloads release folders; `card` writes the dataset card and
the Croissant metadata; `charts` draws the SVG charts shared with `corpus report`.
"""
