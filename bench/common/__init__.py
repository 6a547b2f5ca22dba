"""Helpers every room of bench/ uses: atomic writes and locks, the project's folders, the
dataset a command runs on, NaN-tolerant numbers, ranges of numbers, markdown of scores, progress bars, the
device of a figure, TensorFlow's quiet import.

The reliability mechanisms, one each (call them from a new source, export, report or dataset layout rather
than writing a check of your own):

- A path about to be read (`data/files.py`, so dataset readers share it): `files.check_file(path, what)`
  (a readable regular file, not a folder, FIFO, device, link loop or broken link; size within
  `max_bytes`; empty refused unless `allow_empty`) and
  `files.read_file(path, what)` (the bytes, read without blocking and checked on the open descriptor).
  `files.what_it_holds(files.read_head(path))` names what a file holds ("a PNG image", "a zip archive",
  "a LiteRT (.tflite) model") for a file whose extension says otherwise; `sources.opener.HOLDS` maps a
  checkpoint extension to what it may hold (add `.onnx`, `.xml` there). `files.content_digest(pairs)`:
  a content hash of a list of files, to key a sweep, cache or row by what its inputs hold, never a name.
- An image about to be decoded: `data.pixels.check_pixels(h, w, path, role)` against `MAX_PIXELS`,
  `check_png(head, path, role)` from a PNG's first 24 bytes, `check_png_file(path, role)` for a PNG a
  library will read later (also refuses one cut short), `check_image_file(path, role)` for a frame of any
  format the decoder takes (PNG, JPEG, BMP).
- A number: `ranges.Range(kind, low, high)` as an argparse `type` (the message and `str(range)` in the
  help say the range) or `.check(value, "--option")` for a value from a file; shared ones in
  `bench/arguments.py` (`FRAME_COUNT`, `REPEATS`) and `ranges.SEED`. `data.sizes` keeps HxW options within
  the pixel budget.
- An output: `atomic.check_writable(path, what, folder=...)` before the work (a folder in the way,
  read-only, no space, a name too long); `atomic.write_bytes` / `write_text` / `replacing` /
  `replaced_folder` for the write itself (whole or nothing, errors as UserError naming the path);
  `atomic.writing(path, what)` around a write that cannot be atomic (a log appended row by row).

May import: data.
"""
