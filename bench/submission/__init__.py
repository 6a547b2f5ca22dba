"""Cityscapes test-server submissions: predict a split into the zip the server accepts, and check any zip.

`writer` predicts every image of the split into an archive written atomically, `check` validates a zip
against the split's images (missing, duplicate or extra files, size, colour, train IDs, values >= 34),
`command` is the CLI (`python -m bench submit`).
"""
