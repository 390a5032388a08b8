"""The experiment configs (JSON), shipped as the package data `tallysim.experiments`; see setup.py."""
