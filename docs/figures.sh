#!/usr/bin/env bash
# Copy the README's figure set from a finished demo run (`snakemake --cores 2` in the
# repository's root) to docs/figures/: one figure of each kind the demo makes.
set -euo pipefail
cd "$(dirname "$0")/.."
out=docs/figures
mkdir -p "$out"
cp results/plots/zmumu/mll.png "$out/zmumu_mll.png"
cp results/plots/dimuon/mll_search.png "$out/dimuon_mll_search.png"
cp results/fit/njets_fit/postfit/ww_emu_2018.png "$out/postfit_ww_emu_2018.png"
for name in impacts scan cls correlations pulls; do
  cp "results/fit/njets_fit/$name.png" "$out/$name.png"
done
cp results/search/zprime/limits.png "$out/limits.png"
echo "copied $(ls "$out" | wc -l) figures to $out"
