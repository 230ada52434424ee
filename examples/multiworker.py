"""Data-parallel training on worker processes of this machine, with MultiWorkerMirroredStrategy.

Run without `TF_CONFIG`, this script is the launcher: it starts one copy of itself per worker, each with
its `TF_CONFIG` from `keras_resnet.training.distribute.local_cluster` (free ports of 127.0.0.1), and waits for them.
Each worker resolves strategy `"auto"` to `MultiWorkerMirroredStrategy`, builds a ResNet-20 with the
`cifar10` recipe scaled to the global batch (`--batch-size` images per worker), and trains on the embedded
shapes images, keeping its share of every batch. Worker 0, the chief, writes the run folder: `best.keras`,
`last.keras`, `log.csv`, and `backup/` while training. Kill the workers and run the same command again:
the cluster resumes from the chief's last finished epoch.

Run:

    python examples/multiworker.py
    python examples/multiworker.py --workers 2 --epochs 5 --output runs/multiworker

TensorFlow's gRPC server listens on every interface of the machine. To keep the workers on the loopback,
run the launcher in a network namespace of its own (Linux):

    unshare -rn sh -c 'ip link set lo up && exec python examples/multiworker.py'

On several machines, set `TF_CONFIG` by hand on each (`{"cluster": {"worker": ["host1:port",
"host2:port"]}, "task": {"type": "worker", "index": I}}`) and run this script there: with `TF_CONFIG` set
it trains as that worker. `--output` must then be on a file system every machine mounts.
"""

import argparse
import os
import subprocess
import sys


def launch(workers):
    """Starts one worker process per `TF_CONFIG` of a local cluster; returns the worst exit status."""
    # Imported here, as in `train`: keras_resnet imports Keras and with it TensorFlow, which the launcher
    # does not need and a worker must first set up with its multi-worker strategy.
    from keras_resnet.training.distribute import local_cluster

    processes = [
        subprocess.Popen([sys.executable, *sys.argv], env={**os.environ, "TF_CONFIG": config})
        for config in local_cluster(workers)
    ]
    try:
        return max(process.wait() for process in processes)
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()


def train(args):
    """Trains as the worker `TF_CONFIG` names."""
    from keras_resnet import data
    from keras_resnet.training import distribute, replicated, run_folder

    # First of all: TensorFlow needs the multi-worker strategy before any other TensorFlow work.
    replication = distribute.replicate("auto")
    model, recipe, _ = replicated.distributed_model(
        "resnet20",
        "cifar10",
        strategy=replication,
        per_replica_batch_size=args.batch_size,
        input_shape=(32, 32, 3),
        classes=5,
    )
    splits = data.datasets(
        "shapes", batch_size=recipe.batch_size, train_size=args.train_size, validation_size=args.train_size // 4
    )
    train_data, validation_data = (distribute.shard_dataset(d, "data") for d in (splits.train, splits.validation))
    callbacks = run_folder.run_callbacks(recipe, args.output, is_chief=replication.is_chief, tensorboard=False)
    if replication.is_chief:
        print(
            f"{replication.num_workers} workers, {replication.num_replicas} replicas, global batch "
            f"{recipe.batch_size}, learning rate {recipe.lr:g}; files in {args.output}"
        )
    model.fit(
        train_data,
        validation_data=validation_data,
        epochs=args.epochs,
        callbacks=callbacks,
        shuffle=False,
        verbose=2 if replication.is_chief else 0,
    )


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=2, help="worker processes to launch (default: %(default)s)")
    parser.add_argument("--epochs", type=int, default=3, help="epochs (default: %(default)s)")
    parser.add_argument("--batch-size", type=int, default=64, help="images per worker and step (default: %(default)s)")
    parser.add_argument("--train-size", type=int, default=2000, help="shapes training images (default: %(default)s)")
    parser.add_argument(
        "--output",
        default=os.path.join("runs", "multiworker"),
        help="the run folder, written by the chief (default: %(default)s)",
    )
    args = parser.parse_args()
    if "TF_CONFIG" in os.environ:
        train(args)
    else:
        sys.exit(launch(args.workers))


if __name__ == "__main__":
    main()
