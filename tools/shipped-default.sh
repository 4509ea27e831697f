#!/usr/bin/env bash
# The recipe of pretrained/ (issue 23's default; what ran where: docs/shipped-default.md).
#
#   bash tools/shipped-default.sh            # train (or continue) into $RUN, then evaluate
#   EXPORT=1 bash tools/shipped-default.sh   # ... and export the result to pretrained/ (replacing it)
#
# Every stage is skipped when its result exists, and a training continues from its checkpoint (exact resume), so the
# same command again continues after Ctrl-C, on another day, or on another machine with the run folder copied over.
# Teacher, encoding, sampling and scores run in factorgen (wasm); the two long trainings run in factorgen's PyTorch
# twin under torchrun (python/factorgen_twin, 2.5-4x faster per step on a CPU): the tokenizer's run starts in
# factorgen (one step fixes its model, initialization and recipe), the generator's starts in the twin.
# Needs Debian's /usr/bin/python3 with torch (apt-get install python3-torch libopenblas0-pthread).
set -euo pipefail
cd "$(dirname "$0")/.."

RUN=${RUN:-runs/default3}        # run folder
NPROC=${NPROC:-2}                # twin processes (one thread each)
TEACHER_STEPS=${TEACHER_STEPS:-600}
TOK_STEPS=${TOK_STEPS:-5000}     # steps of TOK_BATCH
TOK_BATCH=${TOK_BATCH:-64}
TOK_ADV_START=${TOK_ADV_START:-400}   # PatchGAN from this step (the preset would take 10 % of the first command's --steps)
GEN_STEPS=${GEN_STEPS:-2400}     # steps of GEN_BATCH (2400 x 64 = 2.6 epochs of the 60,000 train images)
GEN_BATCH=${GEN_BATCH:-64}
CFG=${CFG:-2}                    # guidance of the default (sample --cfg)
SWEEP=${SWEEP:-1 1.5 2 2.5 3}    # guidance sweep, 100 samples per class each
BIG_N=${BIG_N:-1000}             # samples per class of the second table (1000 x 10 = 10,000)
F=(node apps/cli/bin/factorgen.mjs)
PY=${PY:-/usr/bin/python3}

log() { printf '\n== %s  %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }
stepOf() { [ -f "$1/checkpoint/config.json" ] && "$PY" -c 'import json,sys; print(json.load(open(sys.argv[1]))["step"])' "$1/checkpoint/config.json" || echo 0; }
twin() {
  if [ "$NPROC" -gt 1 ]; then
    env PYTHONPATH=python OMP_NUM_THREADS=1 OMP_WAIT_POLICY=PASSIVE torchrun --nproc_per_node "$NPROC" --redirects 2 --tee 1 -m "$@"
  else
    env PYTHONPATH=python OMP_NUM_THREADS=2 OMP_WAIT_POLICY=PASSIVE "$PY" -m "$@"
  fi
}
mkdir -p "$RUN"

# 1. The teacher: a classifier whose features give the perceptual loss and sub-codebook 1's alignment target.
if [ "$(stepOf "$RUN/teacher")" -lt "$TEACHER_STEPS" ]; then
  log "teacher: $TEACHER_STEPS steps of 64"
  resume=(); [ -f "$RUN/teacher/checkpoint/config.json" ] && resume=(--resume)
  "${F[@]}" teacher train --out "$RUN/teacher" "${resume[@]}" --steps "$TEACHER_STEPS" --batch 64 --seed 7 --threads 2 \
    --checkpoint-every 200 --log-every 50
fi

# 2. The tokenizer: FQGAN's recipe (--preset fqgan) at base width 32 with 2 x 1024 codes; started in factorgen,
#    trained by the twin.
if [ ! -f "$RUN/tokenizer/checkpoint/config.json" ]; then
  log "tokenizer: the first step in factorgen"
  "${F[@]}" tokenizer train --out "$RUN/tokenizer" --preset fqgan --teacher "$RUN/teacher" --codebook-size 1024 \
    --base-channels 32 --batch "$TOK_BATCH" --seed 0 --adversarial-start "$TOK_ADV_START" --steps 1 --threads 2 \
    --checkpoint-every 100 --log-every 25
fi
if [ "$(stepOf "$RUN/tokenizer")" -lt "$TOK_STEPS" ]; then
  log "tokenizer: on to step $TOK_STEPS in the twin ($NPROC processes)"
  twin factorgen_twin.train_tokenizer --out "$RUN/tokenizer" --resume --steps "$TOK_STEPS" \
    --teacher "$RUN/teacher" --align-target "1:$RUN/teacher" --checkpoint-every 100 --log-every 25
fi

# 3. Tokens: the whole train split for training, 2000 test images for the validation loss.
[ -f "$RUN/train.tokens" ] || { log "encode the train split"; "${F[@]}" tokenizer encode --tokenizer "$RUN/tokenizer" --split train --out "$RUN/train.tokens" --threads 2; }
[ -f "$RUN/test.tokens" ] || { log "encode 2000 test images"; "${F[@]}" tokenizer encode --tokenizer "$RUN/tokenizer" --split test --limit 2000 --out "$RUN/test.tokens" --threads 2; }

# 4. The generator: the CLI's defaults (width 192 x 6, 3-layer FAR head, weight decay 0.05, dropout 0.1), in the twin.
if [ "$(stepOf "$RUN/generator")" -lt "$GEN_STEPS" ]; then
  log "generator: $GEN_STEPS steps of $GEN_BATCH in the twin ($NPROC processes)"
  resume=(); [ -f "$RUN/generator/checkpoint/config.json" ] && resume=(--resume)
  twin factorgen_twin.train_generator --tokens "$RUN/train.tokens" --val "$RUN/test.tokens" --out "$RUN/generator" "${resume[@]}" \
    --steps "$GEN_STEPS" --batch "$GEN_BATCH" --seed 0 --ema 0.999 --val-every 700 --val-limit 2000 --checkpoint-every 100 --log-every 25
fi

# 5. Export (only when asked): the EMA weights, without optimizer state.
if [ "${EXPORT:-0}" = 1 ]; then
  log "export to pretrained/"
  "${F[@]}" export --from "$RUN/tokenizer" --to pretrained/tokenizer --overwrite
  "${F[@]}" export --from "$RUN/generator" --to pretrained/generator --tokenizer-path pretrained/tokenizer --overwrite
fi

# 6. Scores with the committed evaluator: the tokenizer on the whole test split, samples at each guidance (100 per
#    class), and BIG_N per class at the default guidance.
mkdir -p "$RUN/eval"
[ -f "$RUN/eval/recon.json" ] || { log "eval recon (10,000 test images)"; "${F[@]}" eval recon --tokenizer "$RUN/tokenizer" --out "$RUN/eval/recon.json" --threads 2; }
for g in $SWEEP; do
  [ -f "$RUN/eval/samples-cfg$g.json" ] && continue
  log "samples at guidance $g (100 per class)"
  "${F[@]}" sample --generator "$RUN/generator" --tokenizer "$RUN/tokenizer" --per-class 100 --classes all --seed 0 --cfg "$g" \
    --out "$RUN/samples-cfg$g" --overwrite --threads 2
  "${F[@]}" eval samples --samples "$RUN/samples-cfg$g" --out "$RUN/eval/samples-cfg$g.json" --threads 2
done
if [ ! -f "$RUN/eval/samples-cfg$CFG-n$((BIG_N * 10)).json" ]; then
  log "samples at guidance $CFG ($BIG_N per class)"
  "${F[@]}" sample --generator "$RUN/generator" --tokenizer "$RUN/tokenizer" --per-class "$BIG_N" --classes all --seed 1 --cfg "$CFG" \
    --out "$RUN/samples-cfg$CFG-n$((BIG_N * 10))" --overwrite --threads 2
  "${F[@]}" eval samples --samples "$RUN/samples-cfg$CFG-n$((BIG_N * 10))" --out "$RUN/eval/samples-cfg$CFG-n$((BIG_N * 10)).json" --threads 2
fi
log "done: $RUN/eval/*.json"
