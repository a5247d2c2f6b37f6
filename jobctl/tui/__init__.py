"""`jobctl top`: the live Textual monitor. Importing `jobctl` never imports this package (or Textual).

`source` turns the database into immutable `Snapshot`s off the UI thread; `app` renders them.
"""
