"""Suite-wide pytest configuration."""

# The testing harness's fixtures (runtime_app), as a user's conftest would load them.
pytest_plugins = ["runtime.testing.plugin"]
