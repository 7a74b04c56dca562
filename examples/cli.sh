#!/usr/bin/env bash
# The bayes-prsn command line from start to end: demo data, fit with a posterior, predict.
#
#   bash examples/cli.sh               # writes cli_output/
#   bash examples/cli.sh /tmp/cli 200  # output folder, number of simulated samples
#
# Needs the package installed (pip install ".[plots]"), which puts bayes-prsn on the PATH.
set -euo pipefail
out=${1:-cli_output}
n_samples=${2:-500}

# 1. The demo simulates data with known per-sample coefficients and fits them.
bayes-prsn demo --out "$out/demo" --n-samples "$n_samples" --quiet
head -3 "$out/demo/data.csv"

# 2. Fit the same CSV as a user would: the target, the covariates; every other column
#    is a predictor. --posterior laplace adds 90% credible intervals to coefficients.csv
#    and writes posterior.nc (ArviZ); nuts is the exact but slower choice.
bayes-prsn fit "$out/demo/data.csv" --target y --covariates u0,u1,u2,noise0 \
    --posterior laplace --out "$out/fit" --quiet
head -3 "$out/fit/coefficients.csv"

# 3. Predict new samples (here the first rows again, without y) with intervals.
head -6 "$out/demo/data.csv" | cut -d, -f1,3- > "$out/new.csv"
bayes-prsn predict "$out/fit" "$out/new.csv" --out "$out/predictions.csv" --interval --quiet
cat "$out/predictions.csv"

# 4. A mistake gives a one-line message and exit status 1 (and leaves no folder behind).
status=0
bayes-prsn fit "$out/demo/data.csv" --target y --covariates tissue --out "$out/x" --quiet || status=$?
echo "exit status $status"
ls "$out/fit"
