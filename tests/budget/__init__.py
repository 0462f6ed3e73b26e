"""Tests of the shutdown budget, gsup check and gsup drill, against real processes."""
