"""Django models travel as references without `register_locator`: the primary key, re-loaded with the
model's default manager; a deleted row raises `jobctl.RecordNotFound`."""

from __future__ import annotations

from typing import Any

from django.apps import apps
from django.db import models

from jobctl.arguments import Locator, class_path, register_locator_provider
from jobctl.errors import RecordNotFound, SerializationError


def _loader(model: type[models.Model]) -> Any:
    def load(pk: Any) -> models.Model:
        try:
            return model._default_manager.get(pk=pk)
        except model.DoesNotExist:  # type: ignore[attr-defined]
            raise RecordNotFound(f"{class_path(model)} with primary key {pk!r} not found") from None

    return load


def _pk(record: models.Model) -> Any:
    if record.pk is None:
        raise SerializationError(f"an unsaved {class_path(type(record))} has no primary key to pass to a job: "
                                 "save it before enqueueing")
    return record.pk


_by_path: dict[str, type[models.Model]] = {}


def _models_by_path() -> dict[str, type[models.Model]]:
    if not _by_path and apps.ready:
        _by_path.update((class_path(m), m) for m in apps.get_models(include_auto_created=True))
    return _by_path


def model_locator(key: type | str) -> Locator | None:
    """A locator for a concrete Django model, found by class (encoding) or by class path among the models
    Django has loaded (decoding: a row's path never imports anything)."""
    if isinstance(key, str):
        model = _models_by_path().get(key)
    else:
        model = key if issubclass(key, models.Model) and not key._meta.abstract else None  # type: ignore[attr-defined]
    if model is None:
        return None
    return Locator(model, _pk, _loader(model))


register_locator_provider(model_locator)
