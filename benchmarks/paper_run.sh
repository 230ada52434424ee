#!/usr/bin/env bash
# The paper's ResNet-20 run (issue 17 item 1): `keras-resnet train --model resnet20 --dataset cifar10 --full-train`,
# 64k iterations on all 50k CIFAR-10 training images, ~13 h on a 2-core CPU, carried across working sessions on
# machines that do not keep their files between them.
#
#   benchmarks/paper_run.sh start    lay the run's code snapshot (the commit in benchmarks/paper_run/COMMIT) and,
#                                    where the run folder is missing, the state last saved here; resume the run in
#                                    the background (nice 19, its own session); does nothing if it is running
#   benchmarks/paper_run.sh save     copy the run's resume state (backup/, log.csv, run.json: ~2.4 MB) into
#                                    benchmarks/paper_run/run/ to commit; the run resumes exactly from it
#   benchmarks/paper_run.sh status   epochs done, the last epoch's line, whether it is running
#
# RUN_ROOT (default /root/kr-long) holds code/, resnet20-full/ (the run folder) and resnet20-full.log, outside the
# work tree: the run trains from a snapshot, never from files being edited. DATA_DIR defaults to the CIFAR-10
# python batches in ../shared/data beside the repository.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
state=$repo/benchmarks/paper_run
root=${RUN_ROOT:-/root/kr-long}
run=$root/resnet20-full
data=${DATA_DIR:-$(cd "$repo/.." && pwd)/shared/data/cifar-10-batches-py}

running() { pgrep -f -- "--output $run( |$)" > /dev/null; }

epochs_done() {
    python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["epoch"])' "$1/backup/training_metadata.json" \
        2> /dev/null || echo 0
}

case "${1:-}" in
start)
    if running; then
        echo "running already: $run"
        exit 0
    fi
    if [ ! -d "$root/code/keras_resnet" ]; then
        mkdir -p "$root/code"
        git -C "$repo" archive "$(cat "$state/COMMIT")" | tar -x -C "$root/code"
    fi
    if [ ! -f "$run/run.json" ] && [ -f "$state/run/run.json" ]; then
        mkdir -p "$run"
        cp -r "$state/run/." "$run/"
        echo "laid the saved state: resumes after epoch $(epochs_done "$run")"
    fi
    cd "$root"
    PYTHONPATH=$root/code TF_CPP_MIN_LOG_LEVEL=2 setsid nohup nice -n 19 python3 -m keras_resnet.cli train \
        --model resnet20 --dataset cifar10 --data-dir "$data" --full-train --output "$run" --verbose 2 \
        >> "$root/resnet20-full.log" 2>&1 < /dev/null &
    echo "started: $run (log $root/resnet20-full.log)"
    ;;
save)
    # The backup's training_metadata.json is written after the weights it names: copy it first, then what it names.
    [ -f "$run/backup/training_metadata.json" ] || { echo "no backup in $run yet" >&2; exit 1; }
    staging=$(mktemp -d)
    mkdir -p "$staging/backup"
    cp "$run/backup/training_metadata.json" "$staging/backup/"
    weights=$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["weights"])' \
        "$staging/backup/training_metadata.json")
    cp "$run/backup/$weights" "$staging/backup/"
    cp "$run/log.csv" "$run/run.json" "$staging/"
    rm -rf "$state/run"
    mv "$staging" "$state/run"
    chmod 755 "$state/run"
    echo "saved the state after epoch $(epochs_done "$state/run") into $state/run"
    ;;
status)
    echo "epochs done: $(epochs_done "$run") (saved here: $(epochs_done "$state/run"))"
    [ -f "$run/log.csv" ] && tail -n 1 "$run/log.csv"
    if running; then echo "running"; else echo "not running"; fi
    ;;
*)
    echo "usage: $0 start|save|status" >&2
    exit 2
    ;;
esac
