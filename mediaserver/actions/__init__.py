"""The action runner: scenario loading and validation, expressions, actions."""
