"""The example app. Importing it registers its models' locators and `_later` methods and its jobs:
`config/queue.yml` lists it under `imports:` so every worker has them before the first job."""

from examples.app import jobs, models

__all__ = ["jobs", "models"]
