"""The PDF sets CMS samples store in NanoAOD's ``LHEPdfWeight``, by LHAPDF ID: how many members
the branch holds and how their spread is an uncertainty. LHAPDF is not needed (nor available
offline); the table carries what LHAPDF's ``.info`` files say. Standard library only (the config
checks and the small merge jobs read it).

``LHEPdfWeight[i]`` is the weight of member ``i`` of the set (LHA ID ``id + i``) over the
nominal weight; member 0 is the set's central member. The uncertainty of a histogram bin,
from the bin's value ``h_i`` filled with each member (:mod:`brewflow.results.members`):

- ``hessian`` (symmetric eigenvectors): ``sqrt(sum_{i=1..N} (h_i - h_0)^2)``;
- ``replicas`` (Monte Carlo replicas): the standard deviation of ``h_1..h_N`` (``1/(N-1)``);
- with ``alphas`` members (``pdfas`` sets): the alpha_s variation ``(h_up - h_down) / 2``,
  scaled by ``alphas_scale`` to the PDF4LHC recommendation's 1 sigma (+-0.0015), added in
  quadrature.

The sets are the ones of CMS's Run 2 and Run 3 samples; NanoAOD's branch title names the IDs
(``LHA IDs 325300 - 325402``).
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["PDF_SETS", "PdfSet"]


@dataclass(frozen=True)
class PdfSet:
    """One LHAPDF set as NanoAOD stores it."""

    name: str
    entries: int
    """The number of ``LHEPdfWeight`` entries (central member, error members, alpha_s)."""
    error: str
    """``hessian`` or ``replicas``."""
    alphas: tuple[int, int] | None = None
    """The entries of alpha_s down and up, or None."""
    alphas_scale: float = 1.0
    """The factor from the members' alpha_s step to 1 sigma (0.0015)."""

    @property
    def error_members(self) -> range:
        """The entries of the error members (eigenvectors or replicas)."""
        return range(1, self.alphas[0] if self.alphas else self.entries)


PDF_SETS: dict[int, PdfSet] = {
    # NNPDF 3.1 NNLO with its alpha_s 0.116 and 0.120 members (+-0.002: x 0.75 to +-0.0015);
    # 325300: the Hessian conversion for MC generation (CMS's Run 2 UL and Run 3 samples)
    306000: PdfSet("NNPDF31_nnlo_hessian_pdfas", 103, "hessian", (101, 102), 0.75),
    325300: PdfSet("NNPDF31_nnlo_as_0118_mc_hessian_pdfas", 103, "hessian", (101, 102), 0.75),
    # PDF4LHC15 with alpha_s 0.1165 and 0.1195 (+-0.0015: 1 sigma as they are)
    90400: PdfSet("PDF4LHC15_nlo_30_pdfas", 33, "hessian", (31, 32)),
    91400: PdfSet("PDF4LHC15_nnlo_30_pdfas", 33, "hessian", (31, 32)),
    # Monte Carlo replicas
    260000: PdfSet("NNPDF30_nlo_as_0118", 101, "replicas"),
    331100: PdfSet("NNPDF40_nnlo_as_01180", 101, "replicas"),
}
"""LHAPDF ID of the central member -> the set (config: ``systematics.<name>.set``)."""
