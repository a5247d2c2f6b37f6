"""The CLI's verbs, one module per group; `jobctl.cli` assembles them."""
