"""The response checker's tests share the builtin server's tiny models and processes."""

from tests.modelserver.conftest import servers, tiny  # noqa: F401 (fixtures)
