"""Preset YAML files (package data) for :mod:`workflows.qe.preset_rules`."""
