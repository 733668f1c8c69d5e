"""The HTML report of a run: the data it shows (:mod:`.data`), its figures (:mod:`.figures`), the
interactive graph (:mod:`.graph`), the page (:mod:`.page`) and the writer (:mod:`.build`)."""

from circuitatlas.report.build import WrittenReport, write_report

__all__ = ["WrittenReport", "write_report"]
