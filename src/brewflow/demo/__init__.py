"""The demo: generated NanoAOD-like events, payloads, a BDT and the analysis that reads them
(``analysis: {callable: brewflow.demo:analysis}``); the ADL queries are :mod:`brewflow.adl`."""

from brewflow.demo.physics import analysis

__all__ = ["analysis"]
