"""The demo: generated NanoAOD-like events, payloads, a BDT and the analysis that reads them
(``analysis: {callable: brewflow.demo:analysis}``), and the ADL benchmark queries."""

from brewflow.demo.physics import analysis

__all__ = ["analysis"]
